/* Part of libdlrt; include <dlrt.h> rather than this file.
 *
 * Safetensors checkpoints (https://huggingface.co/docs/safetensors): an
 * 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (plus an
 * optional "__metadata__" object of string -> string), then the tensor data,
 * row-major and little-endian, offsets relative to the start of the data.
 *
 * Files written here are readable by the `safetensors` Python package: the
 * header is compact JSON, "__metadata__" (if any) first, then the tensors in
 * the order given with contiguous offsets from 0, padded with spaces to a
 * multiple of 8 bytes. Files it writes (which order tensors by dtype and
 * name) are read here in any order.
 */
#ifndef DLRT_CHECKPOINT_H
#define DLRT_CHECKPOINT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest header accepted, as in the reference implementation. */
#define DLRT_CKPT_MAX_HEADER 100000000u

/* Load flags. */
#define DLRT_CKPT_ALLOW_EXTRA 1u /* tensors in the file that are not expected are ignored */
/* tensors named "opt.*" (optimizer state) are left out: descs may name none
 * (DLRT_EINVAL otherwise) and the file's are ignored */
#define DLRT_CKPT_SKIP_OPT 2u
/* an F32 tensor of the file fills an F16 or BF16 desc, each element rounded
 * to nearest even (dlrt_f16_from_f32): f32 weights into a half-precision
 * model, as PyTorch's load_state_dict into a model.half() */
#define DLRT_CKPT_NARROW 4u

/* Writes n tensors (descs[i] with the row-major data data[i]) and nmeta
 * metadata pairs to `path` atomically: to `path.tmp.XXXXXX` in the same
 * directory, fsync'd, renamed over `path`, then the directory is fsync'd.
 * The new file keeps the permission bits of the file it replaces (else
 * 0666 minus the process umask as /proc/self/status reports it, or 0600
 * where it does not). On any failure before the rename the
 * temporary file is removed and an existing `path` is untouched.
 * Returns 0, DLRT_EINVAL (NULL pointers, n or nmeta < 0, a name that is
 * NULL, not UTF-8, "__metadata__" or repeated, a bad dtype, rank or
 * dimension, a size that overflows, a repeated or non-UTF-8 metadata key or
 * value), DLRT_ENOMEM, or DLRT_EIO (the write failed; also when only the
 * final directory fsync failed, after the new file is in place). */
int dlrt_checkpoint_save(const char *path, const dlrt_tensor_desc *descs, const void *const *data,
                         int n, const char *const *meta_keys, const char *const *meta_values,
                         int nmeta);

/* Called once per "__metadata__" entry, in file order, after the whole file
 * was validated and before any destination is written. key and value are
 * NUL-terminated; the lengths count their bytes (they may hold NULs from
 * \u0000). Return 0 to go on; anything else aborts the load with no
 * destination written: a negative value is returned as is, a positive one
 * becomes DLRT_EMISMATCH. Store what you need; apply it once the load
 * returned 0. */
typedef int (*dlrt_meta_fn)(void *ctx, const char *key, size_t key_len, const char *value,
                            size_t value_len);

/* Reads the tensors named by descs[0..n) from `path` into data[i] (the
 * row-major buffer of descs[i]). Everything is validated before any
 * destination is written, so a failed load leaves them all unchanged:
 * - DLRT_EINVAL: NULL pointers, n < 0, unknown flags, a bad or repeated desc;
 * - DLRT_EIO: the file cannot be opened or read (or is not a regular file);
 * - DLRT_EFORMAT: not a well-formed safetensors file: a header length over
 *   DLRT_CKPT_MAX_HEADER or past the end of the file, a header that is not
 *   strict JSON of the expected form (it must start with '{'; duplicate
 *   keys, unknown fields, trailing bytes other than whitespace, numbers that
 *   are not non-negative integers up to 2^63-1, more than 32 dimensions and
 *   malformed UTF-8 or escapes are all rejected), an unknown dtype, a byte
 *   range that does not match dtype and shape, or ranges that do not tile
 *   the data exactly (contiguous from 0, no overlap, no gap, none past the
 *   end, nothing after the last one);
 * - DLRT_EMISMATCH: well-formed, but an expected tensor is missing or has
 *   another dtype (but F32 for F16 or BF16 with DLRT_CKPT_NARROW) or shape,
 *   or the file holds other tensors and flags lacks DLRT_CKPT_ALLOW_EXTRA;
 * - DLRT_ENOMEM; or what meta (which may be NULL) returned. */
int dlrt_checkpoint_load(const char *path, const dlrt_tensor_desc *descs, void *const *data, int n,
                         unsigned flags, dlrt_meta_fn meta, void *ctx);

/* The same, from the `size` bytes of a whole file held in memory. */
int dlrt_checkpoint_load_buffer(const void *buf, size_t size, const dlrt_tensor_desc *descs,
                                void *const *data, int n, unsigned flags, dlrt_meta_fn meta,
                                void *ctx);

/* Copies the "__metadata__" value of `key` from the (fully validated) file
 * at `path` into buf, truncated to size - 1 bytes and NUL-terminated when
 * size > 0, like snprintf. Returns the value's full length in bytes,
 * DLRT_EMISMATCH if the file has no such key, or the codes of
 * dlrt_checkpoint_load (DLRT_EINVAL for NULL path or key, or NULL buf with
 * size > 0). */
int dlrt_checkpoint_meta(const char *path, const char *key, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
