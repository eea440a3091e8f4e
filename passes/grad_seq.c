/*
 * Gradient rules of the sequence family (see grad.h for the contract).
 * Implemented: embedding, whose table gradient scatters each position's
 * adjoint row into the row of its id. It is built as one_hot(ids)^T @ dy
 * over the M positions flattened, [V, M] @ [M, D]: exact (each product is
 * a sum of dy rows times 0 or 1) and made of existing ops, at the cost of
 * M * V * D multiply-adds. The recurrent cells and attention have no rule
 * yet (grad_todo in ops.def).
 */
#include <inttypes.h>

#include "grad.h"
#include "shape.h"

bool grad_embedding(Grad *c, Node *n, Node *dy)
{
    Node *ids = n->in[0], *table = n->in[1];
    Dim v = table->shape.d[0], d = table->shape.d[1];
    /* M: the ids' element count, possibly a multiple of the batch */
    Dim m = {1, false};
    int nbatch = 0;
    for (int i = 0; i < ids->shape.rank; i++) {
        m.n *= ids->shape.d[i].n;
        m.batch |= ids->shape.d[i].batch;
        nbatch += ids->shape.d[i].batch;
    }
    if (nbatch > 1) {
        diag_error(n->loc, "embedding of ids with the batch size in more than one dimension has "
                           "no gradient yet: the loss cannot be differentiated through it");
        return false;
    }
    /* one_hot(ids) is the one tensor here not bounded by a forward one */
    int64_t maxb = c->g->batch && c->g->max_batch > 0 ? c->g->max_batch : 1, elems;
    if (mul_overflows_i64(m.n, v.n, &elems) ||
        (m.batch && mul_overflows_i64(elems, maxb, &elems)) || elems > SHAPE_MAX_ELEMS) {
        diag_error(n->loc,
                   "embedding: the gradient of a %" PRId64 "-row table over this many ids "
                   "is too large (more than 2^40 elements)",
                   v.n);
        return false;
    }
    Node *oh = ad_node(c, OP_ONE_HOT, &ids, 1);
    ir_set_int(c->g, oh, "n", v.n);
    oh = ad_finish(c, oh);
    if (oh->dtype != table->dtype) {
        Node *cast = ad_node(c, OP_CAST, &oh, 1);
        ir_set_str(c->g, cast, "to", ir_dtype_name(table->dtype));
        oh = ad_finish(c, cast);
    }
    Shape mv = {.rank = 2, .d = {m, v}}, md = {.rank = 2, .d = {m, d}};
    Node *ohT = ad_reshape(c, oh, &mv);
    int64_t perm[2] = {1, 0};
    ohT = ad_transpose(c, ohT, perm);
    ad_acc(c, table, ad_bin(c, OP_MATMUL, ohT, ad_reshape(c, dy, &md)));
    return true;
}
