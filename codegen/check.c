/*
 * The input checks of the entry points (docs/API.md, "Checked inputs"),
 * emitted unless dlc runs with --no-checks. Every floating input must be
 * finite; an i32 input whose values reach the indices of an OPF_INDEX op
 * (the labels of cross_entropy, nll_loss or multi_margin_loss, the ids
 * of embedding, the indices of gather and take (x[ids]), the lengths of
 * rnn, lstm and gru; ir_index_operand says which input and the bound) must lie in 0..hi-1
 * for the smallest hi of those uses, or be the ignore_index that all of
 * them ignore (cross_entropy, nll_loss); the training function also checks
 * the loss and each gradient sum before it writes anything of the
 * instance but the running statistics, which a refusal puts back, and
 * apply_gradients the gradients it is given.
 *
 * A scan is one branch-free loop that LLVM vectorizes (the finite
 * checks' in a function per type, called by each): the largest
 * magnitude bit pattern (the sign cleared) is finite exactly when it is
 * below the exponent mask, an id is in range exactly when its unsigned
 * maximum is below hi. Only when a scan fails does the code call the
 * runtime (dlrt_check_nonfinite, dlrt_check_index), which finds the first
 * bad element for dlrt_last_error() and gives the code to return.
 */
#include <string.h>

#include "cg.h"

/* Whether input j of x reaches x's values unchanged: an index passes
 * through (reverse_sequence moves its x, not its lengths). */
static bool moves_values(const Node *x, int j)
{
    switch (x->op) {
    case OP_RESHAPE:
    case OP_FLATTEN:
    case OP_TRANSPOSE:
    case OP_CONCAT:
    case OP_STACK:
    case OP_BROADCAST_TO:
    case OP_SLICE:
    case OP_SLICE_UPDATE: return true;
    case OP_REVERSE_SEQUENCE: return j == 0;
    default: return false;
    }
}

/* Narrows *t by the bound u of one more use: the smaller range, and an
 * ignored id only when both ignore the same one. */
static void bound_meet(CgIndexBound *t, CgIndexBound u)
{
    if (!t->hi) {
        *t = u;
        return;
    }
    bool ign = t->has_ignore && u.has_ignore && t->ignore == u.ignore;
    if (u.hi < t->hi) {
        t->hi = u.hi;
        t->use = u.use;
    }
    t->has_ignore = ign;
}

CgIndexBound *cg_index_bounds(const Graph *g)
{
    int n = g->nodes.n;
    CgIndexBound *b = arena_alloc(g->arena, sizeof *b * (size_t)(n > 0 ? n : 1));
    /* the bound each node's values must meet, propagated backwards
     * through value-moving ops to the inputs (node order is topological) */
    for (int i = 0; i < n; i++)
        b[i] = (CgIndexBound){0, NULL, false, 0};
    for (int i = n - 1; i >= 0; i--) {
        const Node *x = g->nodes.v[i];
        int k;
        int64_t hi;
        if (ir_index_operand(x, &k, &hi)) {
            bool ign = attr_has_ignore_index(x);
            bound_meet(&b[x->in[k]->id], (CgIndexBound){hi, op_info[x->op].text, ign,
                                                        ign ? attr_ignore_index(x) : 0});
        }
        if (b[i].hi)
            for (int j = 0; j < x->nin; j++)
                if (moves_values(x, j) && x->in[j]->dtype == DT_I32)
                    bound_meet(&b[x->in[j]->id], b[i]);
    }
    return b;
}

static LLVMValueRef cstring(Cg *c, const char *s)
{
    return cg_private_const(c, LLVMConstStringInContext2(c->ctx, s, strlen(s), false), ".str",
                            true);
}

/* if (bad) return call(...) from the current function, which returns i32;
 * without an OS, return code itself: no thread-local message there. The
 * training function has run its kernels when it checks the loss and the
 * gradients, and batch_norm's have moved the running statistics: the
 * refusal puts back the copy taken before (c->undo_states; the function's
 * parameter 0 is the instance). */
static void return_if(Cg *c, LLVMValueRef bad, int code, const char *fn, LLVMTypeRef *pt, int n,
                      LLVMValueRef *args)
{
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "check.fail");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "check.ok");
    LLVMBuildCondBr(c->b, bad, fail, ok);
    LLVMPositionBuilderAtEnd(c->b, fail);
    if (c->undo_states)
        cg_copy_states(c, LLVMGetParam(c->fn, 0), c->undo_states, true);
    LLVMBuildRet(c->b, c->report ? cg_call(c, fn, c->i32, pt, n, args)
                                 : LLVMConstInt(c->i32, (unsigned long long)code, 1));
    LLVMPositionBuilderAtEnd(c->b, ok);
}

void cg_copy_states(Cg *c, LLVMValueRef m, LLVMValueRef copy, bool back)
{
    LLVMValueRef idx = cg_i64(c, c->layout->states_offset);
    LLVMValueRef states = LLVMBuildInBoundsGEP2(c->b, c->i8, m, &idx, 1, "states");
    LLVMBuildMemCpy(c->b, back ? states : copy, 8, back ? copy : states, 8,
                    cg_i64(c, c->layout->states_bytes));
}

/* `i1 NAME.nonfinite.T[.sum](ptr x, ptr y, i64 n)`: whether some x[i]
 * (+ y[i] with sum) is not finite. One function a kind, called by every
 * check of it: a model of thousands of parameters checks thousands of
 * gradients, and a scan inlined at each would grow the training
 * function by as many loops (docs/CODEGEN.md, Parts). */
static LLVMValueRef scan_fn(Cg *c, DType t, bool sum)
{
    const char *name = arena_printf(c->g->arena, "%s.nonfinite.%s%s", c->g->name,
                                    ir_dtype_name(t), sum ? ".sum" : "");
    LLVMTypeRef pt[] = {c->ptr, c->ptr, c->i64};
    CgSaved saved;
    bool made;
    LLVMValueRef fn =
        cg_helper_begin(c, name, LLVMFunctionType(c->i1, pt, 3, false), 0, &saved, &made);
    if (!made)
        return fn;
    LLVMValueRef x = LLVMGetParam(fn, 0), y = LLVMGetParam(fn, 1), n = LLVMGetParam(fn, 2);

    bool wide = t == DT_F64;
    LLVMTypeRef it = wide ? c->i64 : c->i32;
    unsigned long long magnitude = wide ? 0x7fffffffffffffffull : 0x7fffffffull;
    unsigned long long inf = wide ? 0x7ff0000000000000ull : 0x7f800000ull;
    LLVMValueRef acc = cg_alloca(c, it, "finite.acc");
    LLVMBuildStore(c->b, LLVMConstInt(it, 0, 0), acc);
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, n, &l);
    LLVMValueRef v = cg_load(c, t, x, i);
    if (sum)
        v = LLVMBuildFAdd(c->b, v, cg_load(c, t, y, i), "");
    LLVMValueRef bits =
        LLVMBuildAnd(c->b, LLVMBuildBitCast(c->b, v, it, ""), LLVMConstInt(it, magnitude, 0), "");
    LLVMValueRef m[] = {LLVMBuildLoad2(c->b, it, acc, ""), bits};
    LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.umax", it, m, 2), acc);
    cg_loop_end(c, &l);
    LLVMBuildRet(c->b, LLVMBuildICmp(c->b, LLVMIntUGE, LLVMBuildLoad2(c->b, it, acc, ""),
                                     LLVMConstInt(it, inf, 0), ""));
    cg_helper_end(c, &saved);
    return fn;
}

LLVMValueRef cg_nonfinite(Cg *c, DType t, LLVMValueRef x, LLVMValueRef y, LLVMValueRef n)
{
    LLVMValueRef scan = scan_fn(c, t, y != NULL);
    LLVMValueRef sargs[] = {x, y ? y : LLVMConstNull(c->ptr), n};
    return LLVMBuildCall2(c->b, LLVMGlobalGetValueType(scan), scan, sargs, 3, "");
}

void cg_check_finite(Cg *c, DType t, LLVMValueRef x, LLVMValueRef y, LLVMValueRef n,
                     LLVMValueRef row, const char *what)
{
    LLVMValueRef bad = cg_nonfinite(c, t, x, y, n);
    LLVMTypeRef pt[] = {c->ptr, c->i32, c->ptr, c->ptr, c->i64, c->i64};
    LLVMValueRef args[] = {cstring(c, what),
                           LLVMConstInt(c->i32, (unsigned)cg_dlrt_dtype(t), 0),
                           x,
                           y ? y : LLVMConstNull(c->ptr),
                           n,
                           row};
    return_if(c, bad, DLRT_ENONFINITE, "dlrt_check_nonfinite", pt, 6, args);
}

void cg_check_index(Cg *c, LLVMValueRef x, LLVMValueRef n, LLVMValueRef row, int64_t hi,
                    const int64_t *ignore, const char *what)
{
    /* an ignore_index outside i32 matches no label: nothing to skip */
    if (ignore && (*ignore < INT32_MIN || *ignore > INT32_MAX))
        ignore = NULL;
    LLVMValueRef acc = cg_alloca(c, c->i32, "index.acc");
    LLVMBuildStore(c->b, LLVMConstInt(c->i32, 0, 0), acc);
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, n, &l);
    LLVMValueRef v = cg_load(c, DT_I32, x, i);
    if (ignore) /* the ignored id counts as 0, still branch-free */
        v = LLVMBuildSelect(
            c->b,
            LLVMBuildICmp(c->b, LLVMIntEQ, v, LLVMConstInt(c->i32, (unsigned long long)*ignore, 1),
                          ""),
            LLVMConstInt(c->i32, 0, 0), v, "");
    LLVMValueRef m[] = {LLVMBuildLoad2(c->b, c->i32, acc, ""), v};
    LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.umax", c->i32, m, 2), acc);
    cg_loop_end(c, &l);
    /* a negative id is a large unsigned one */
    LLVMValueRef bad = LLVMBuildICmp(c->b, LLVMIntUGE, LLVMBuildLoad2(c->b, c->i32, acc, ""),
                                     LLVMConstInt(c->i32, (unsigned long long)hi, 0), "");
    if (ignore) {
        LLVMTypeRef pt[] = {c->ptr, c->ptr, c->i64, c->i64, c->i64, c->i64};
        LLVMValueRef args[] = {cstring(c, what), x, n, row, cg_i64(c, hi), cg_i64(c, *ignore)};
        return_if(c, bad, DLRT_ERANGE, "dlrt_check_index_ignoring", pt, 6, args);
        return;
    }
    LLVMTypeRef pt[] = {c->ptr, c->ptr, c->i64, c->i64, c->i64};
    LLVMValueRef args[] = {cstring(c, what), x, n, row, cg_i64(c, hi)};
    return_if(c, bad, DLRT_ERANGE, "dlrt_check_index", pt, 5, args);
}

void cg_check_inputs(Cg *c, LLVMValueRef inputs, const int *input_slot)
{
    const Graph *g = c->g;
    CgIndexBound *bound = cg_index_bounds(g);
    for (int i = 0; i < g->nodes.n; i++) {
        Node *x = g->nodes.v[i];
        /* half inputs are not scanned: infinities are values of theirs */
        if (x->op != OP_INPUT || input_slot[i] < 0 || (x->dtype == DT_I32 && !bound[i].hi) ||
            ir_dtype_is_half(x->dtype))
            continue;
        LLVMValueRef idx = cg_i64(c, input_slot[i]);
        LLVMValueRef p = LLVMBuildLoad2(
            c->b, c->ptr, LLVMBuildInBoundsGEP2(c->b, c->ptr, inputs, &idx, 1, ""), x->name);
        LLVMValueRef n = cg_numel(c, &x->shape);
        Shape rest = x->shape;
        LLVMValueRef row = cg_i64(c, 0);
        if (rest.rank > 0 && rest.d[0].batch) {
            rest.rank--;
            memmove(rest.d, rest.d + 1, sizeof rest.d[0] * (size_t)rest.rank);
            row = cg_numel(c, &rest);
        }
        if (x->dtype == DT_I32) {
            /* the packed recurrent ops are rnn, lstm, gru with lengths */
            Op use = ir_op_lookup(bound[i].use);
            bool packed = use != OP_COUNT && ir_recurrent_packed(use);
            bool lengths = packed || use == OP_REVERSE_SEQUENCE;
            const char *role = lengths                                 ? "lengths"
                               : strcmp(bound[i].use, "embedding") == 0 ? "ids"
                               : use == OP_GATHER || use == OP_TAKE     ? "indices"
                                                                        : "labels";
            cg_check_index(c, p, n, row, bound[i].hi,
                           bound[i].has_ignore ? &bound[i].ignore : NULL,
                           arena_printf(g->arena, "input '%s' (%s of %s)", x->name, role,
                                        packed ? op_info[ir_recurrent_cell(use)].text
                                               : bound[i].use));
        } else {
            cg_check_finite(c, x->dtype, p, NULL, n, row,
                            arena_printf(g->arena, "input '%s'", x->name));
        }
    }
}
