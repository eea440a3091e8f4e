/*
 * The memory planner: where every intermediate value of one generated
 * function lives, as byte offsets into one arena per instance, so that the
 * generated code never calls malloc.
 *
 * Schedule. The roots (the function's results) and, transitively, what
 * they read are needed; the materialized ones (Node.fused == NULL, not
 * sources or consts) are the steps, in graph order, which is topological.
 * A fusion group (a root and the members whose fused points at it) runs as
 * one kernel at the root's step, so a member's inputs count as its root's.
 * Sources never take arena space: inputs are the caller's pointers, params
 * and states live in the instance block, consts are immediates.
 *
 * Storage. Every step either owns a slot, or shares one:
 * - Views. A reshape or flatten of a value in the arena is the same bytes
 *   under another shape (row-major, contiguous, at any run-time batch), so
 *   it takes its input's storage; a reshape of an input, param or state is
 *   a view of that source (alias = the source, offset -1: the generated
 *   code reads the source's pointer). Reading a view keeps its storage
 *   alive. A reshape of a const needs a copy and gets a slot of its own.
 * - In place. A kernel whose members are all elementwise (or broadcasts)
 *   writes out[i] from in[i] for an input of the output's exact shape and
 *   type, so it may overwrite such an input whose storage dies at this very
 *   step: nothing else aliases it later and it is not a root. Sources are
 *   never in the arena, so inputs, params and states are never overwritten;
 *   roots live to the end, so results are never overwritten either.
 *   A slice update (ys[:, t, :] = h) is its input with the slice replaced:
 *   when the input's storage dies at this step it takes that storage and
 *   writes only the slice (the code generator skips the copy when the two
 *   share storage), so a loop filling ys step by step copies no whole
 *   tensor. The new value must not live in that storage.
 * The storage of a slot is live from its owner's step to the last step
 * that reads any value sharing it; roots stay live to the end (step
 * nsteps, one past the last).
 *
 * Offsets: greedy by size (Pisarchyk and Lee, "Efficient memory management
 * for deep neural net inference", 2020; TFLite's arena planner). Slots are
 * placed largest first, each at the lowest 64-byte-aligned offset that
 * overlaps no placed slot whose live interval intersects its own. Large
 * buffers dominate the arena and are hardest to fit, so placing them first
 * leaves the small ones to fill the gaps. Chosen over best-fit for its
 * simplicity and determinism (ties go to the earlier step, then the lower
 * node id, then the value before its kernel's scratch); on the example
 * models (mnist_mlp, gpt, the autoencoder, without fusion) it meets the
 * lower bound exactly. A step tree finds each offset (see place()).
 *
 * Scratch: a kernel that needs a temporary buffer (the ScratchFn the driver passes: cg_scratch_bytes) gets
 * a slot live during its own step only, at scratch_offset.
 *
 * Figures: naive_bytes sums a slot per written value (views write nothing;
 * an in-place value would have had its own slot) and per scratch buffer; peak_bytes is the most
 * slot bytes live at one step, with lifetimes merged through aliasing.
 * Slots live at the same step are disjoint in memory, so arena_bytes >=
 * peak_bytes; without in-place reuse it is the classic lower bound.
 */
#include "passes.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_ALIGN = 64 };

typedef struct {
    Node *owner;
    int start, end; /* live steps, inclusive; end == nsteps: to the end */
    int64_t size;   /* aligned */
    int64_t offset;
    bool scratch; /* the owner's kernel scratch, not its value */
} Slot;

typedef struct {
    Graph *g;
    MemPlan *p;
    ScratchFn scratch;
    int nids;
    Node **root;          /* by id: the group root that computes the node */
    Node **first, **next; /* by id: a group's members, in graph order */
    Node **tail;
    bool *needed;
    int *step; /* by id: step index, -1 when not scheduled */
    int *last; /* by id: last step that reads the value */
    int *slot; /* by id of an owner: index in slots */
    Vec(Slot) slots;
} Plan;

static int64_t align_up(int64_t x)
{
    return (x + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
}

static bool is_source(const Node *n)
{
    return op_info[n->op].kind == K_SOURCE;
}

static int64_t value_bytes(const Graph *g, const Node *n)
{
    static const int64_t elem[DT_COUNT] = {[DT_F32] = 4, [DT_F64] = 8, [DT_I32] = 4,
                                           [DT_F16] = 2, [DT_BF16] = 2};
    if (n->dtype == DT_UNKNOWN)
        return 0;
    int64_t maxb = ir_max_batch(g);
    int64_t b = elem[n->dtype];
    for (int i = 0; i < n->shape.rank; i++) {
        Dim d = n->shape.d[i];
        if (mul_overflows_i64(b, d.n, &b) || (d.batch && mul_overflows_i64(b, maxb, &b)))
            die("memplan: %%%d is too large (pass_shape bounds every tensor)", n->id);
    }
    /* a recurrent layer's reserve for its backward op, rows of [B, T] */
    int64_t r = ir_recurrent_reserve(g, n), rb = elem[n->dtype];
    if (r) {
        const Shape *x = &n->in[0]->shape;
        for (int i = 0; i < 2; i++)
            if (mul_overflows_i64(rb, x->d[i].n, &rb) ||
                (x->d[i].batch && mul_overflows_i64(rb, maxb, &rb)))
                die("memplan: %%%d is too large", n->id);
        if (mul_overflows_i64(rb, r, &rb) || add_overflows_i64(b, rb, &b))
            die("memplan: %%%d is too large", n->id);
    }
    return b;
}

/* The group root computing n: n itself unless fused. */
static Node *group_root(const Plan *pl, Node *n)
{
    Node *r = n;
    for (int hops = 0; r->fused; hops++) {
        if (hops > pl->nids)
            die("memplan: cycle in fusion groups at %%%d", n->id);
        r = r->fused;
    }
    return r;
}

/* Runs the statement that follows for every input x (input k of member m)
 * of r's group that the group does not compute itself: every value the
 * kernel at r's step reads. Members come in graph order, then r. */
#define FOR_GROUP_INPUTS(pl, r, m, k, x)                                                           \
    for (Node *m = (pl)->first[(r)->id] ? (pl)->first[(r)->id] : (r); m;                           \
         m = m == (r) ? NULL : ((pl)->next[m->id] ? (pl)->next[m->id] : (r)))                      \
        for (int k = 0; k < m->nin; k++)                                                           \
            for (Node *x = m->in[k]; x; x = NULL)                                                  \
                if ((pl)->root[x->id] != (r))

static void build_groups(Plan *pl)
{
    Graph *g = pl->g;
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        pl->root[n->id] = group_root(pl, n);
    }
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        Node *r = pl->root[n->id];
        if (r == n)
            continue;
        if (is_source(n) || is_source(r))
            die("memplan: source %%%d in a fusion group", is_source(n) ? n->id : r->id);
        if (pl->tail[r->id])
            pl->next[pl->tail[r->id]->id] = n;
        else
            pl->first[r->id] = n;
        pl->tail[r->id] = n;
    }
}

/* Needed values, by a reverse sweep: a group's inputs come before it. */
static void mark_needed(Plan *pl, Node *const *roots, int nroots)
{
    Graph *g = pl->g;
    for (int i = 0; i < nroots; i++) {
        if (roots[i]->fused)
            die("memplan: result %%%d is fused into %%%d", roots[i]->id, roots[i]->fused->id);
        pl->needed[roots[i]->id] = true;
    }
    for (int i = g->nodes.n - 1; i >= 0; i--) {
        Node *r = g->nodes.v[i];
        if (!pl->needed[r->id] || r->fused)
            continue;
        FOR_GROUP_INPUTS(pl, r, m, k, x)
        {
            if (x->fused)
                die("memplan: %%%d reads %%%d, fused into another kernel (%%%d)", m->id, x->id,
                    pl->root[x->id]->id);
            pl->needed[x->id] = true;
        }
    }
}

static void schedule(Plan *pl, Node *const *roots, int nroots)
{
    Graph *g = pl->g;
    MemPlan *p = pl->p;
    p->steps = arena_alloc(g->arena, (size_t)(g->nodes.n ? g->nodes.n : 1) * sizeof *p->steps);
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        if (pl->needed[n->id] && !n->fused && !is_source(n)) {
            pl->step[n->id] = p->nsteps;
            p->steps[p->nsteps++] = n;
        }
    }
    for (int s = 0; s < p->nsteps; s++) {
        Node *r = p->steps[s];
        pl->last[r->id] = s;
        FOR_GROUP_INPUTS(pl, r, m, k, x)
        {
            if (pl->step[x->id] >= 0 && pl->last[x->id] < s)
                pl->last[x->id] = s;
        }
    }
    for (int i = 0; i < nroots; i++)
        if (pl->step[roots[i]->id] >= 0)
            pl->last[roots[i]->id] = p->nsteps;
}

static bool view_op(const Node *n)
{
    return n->op == OP_RESHAPE || n->op == OP_FLATTEN;
}

/* A loop's storage: its results one after the other, each aligned, the
 * saved ones only when this function reads them. */
static void loop_parts(Plan *pl, Node *l)
{
    MemPlan *p = pl->p;
    Graph *g = pl->g;
    LoopParts lp = ir_loop_parts(l);
    int nres = lp.carried + lp.stacked, n = nres + lp.saved;
    int64_t *part = arena_alloc(g->arena, sizeof *part * ((size_t)n + 1));
    bool *read = arena_alloc(g->arena, (size_t)n + 1);
    for (int i = 0; i < nres; i++)
        read[i] = true;
    for (int i = l->id + 1; i < g->nodes.n; i++) {
        Node *r = g->nodes.v[i];
        if (r->op == OP_LOOP_RESULT && r->in[0] == l && pl->needed[r->id])
            read[attr_index(r)] = true;
    }
    int64_t size = 0;
    for (int k = 0; k < n; k++) {
        part[k] = -1;
        if (!read[k])
            continue;
        Node tmp = {.op = OP_LOOP_RESULT};
        ir_loop_result_type(l, k, &tmp.dtype, &tmp.shape);
        part[k] = size;
        size += align_up(value_bytes(g, &tmp));
    }
    p->loop_part[l->id] = part;
    p->bytes[l->id] = size;
}

/* The storage n may overwrite at step s, or NULL. */
static Node *in_place_victim(Plan *pl, Node *r, int s)
{
    MemPlan *p = pl->p;
    for (Node *m = pl->first[r->id]; m; m = pl->next[m->id])
        if (op_info[m->op].kind != K_ELTWISE && m->op != OP_BROADCAST_TO)
            return NULL;
    if (op_info[r->op].kind != K_ELTWISE)
        return NULL;
    FOR_GROUP_INPUTS(pl, r, m, k, x)
    {
        Node *o = p->alias[x->id];
        if (pl->step[x->id] < 0 || pl->slot[o->id] < 0 || o->op == OP_LOOP ||
            x->dtype != r->dtype ||
            !ir_shape_eq(&x->shape, &r->shape))
            continue;
        if (pl->slots.v[pl->slot[o->id]].end != s)
            continue;
        /* Every read of this storage in the kernel must be elementwise at
         * the output's shape, not another view of it broadcast. */
        bool ok = true;
        FOR_GROUP_INPUTS(pl, r, m2, k2, y)
        {
            if (p->alias[y->id] == o && !ir_shape_eq(&y->shape, &r->shape))
                ok = false;
        }
        if (ok)
            return o;
    }
    return NULL;
}

/* The storage the slice update n may take over at step s, or NULL. */
static Node *slice_update_victim(Plan *pl, Node *n, int s)
{
    MemPlan *p = pl->p;
    if (n->op != OP_SLICE_UPDATE || pl->first[n->id] || pl->step[n->in[0]->id] < 0)
        return NULL;
    Node *o = p->alias[n->in[0]->id];
    if (pl->slot[o->id] < 0 || o->op == OP_LOOP || pl->slots.v[pl->slot[o->id]].end != s ||
        p->alias[n->in[1]->id] == o)
        return NULL;
    return o;
}

static void assign_storage(Plan *pl)
{
    MemPlan *p = pl->p;
    for (int s = 0; s < p->nsteps; s++) {
        Node *n = p->steps[s];
        if (n->op == OP_LOOP_RESULT || (view_op(n) && !pl->first[n->id] && !is_source(n->in[0]) &&
                                        pl->step[n->in[0]->id] >= 0 &&
                                        p->alias[n->in[0]->id]->op != OP_LOOP)) {
            Node *o = p->alias[n->in[0]->id];
            p->alias[n->id] = o;
            if (pl->slot[o->id] >= 0) {
                Slot *sl = &pl->slots.v[pl->slot[o->id]];
                if (sl->end < pl->last[n->id])
                    sl->end = pl->last[n->id];
            }
            continue;
        }
        if (view_op(n) && !pl->first[n->id] && n->in[0]->op != OP_CONST && is_source(n->in[0])) {
            p->alias[n->id] = n->in[0];
            continue;
        }
        Node *o = in_place_victim(pl, n, s);
        if (!o)
            o = slice_update_victim(pl, n, s);
        if (o) {
            p->alias[n->id] = o;
            pl->slots.v[pl->slot[o->id]].end = pl->last[n->id];
            continue;
        }
        Slot sl = {n, s, pl->last[n->id], align_up(p->bytes[n->id]), 0, false};
        pl->slot[n->id] = pl->slots.n;
        vec_push(pl->g->arena, &pl->slots, sl);
    }
    /* Scratch buffers live during their own step only. */
    for (int s = 0; s < p->nsteps; s++) {
        Node *n = p->steps[s];
        int64_t b = pl->scratch ? pl->scratch(pl->g, n) : 0;
        p->scratch_bytes[n->id] = b;
        if (b > 0) {
            Slot sl = {n, s, s, align_up(b), 0, true};
            vec_push(pl->g->arena, &pl->slots, sl);
        }
    }
}

static int by_size_desc(const void *a, const void *b)
{
    const Slot *x = *(Slot *const *)a, *y = *(Slot *const *)b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->owner != y->owner)
        return x->owner->id - y->owner->id;
    return x->scratch - y->scratch;
}

/* Placement index. Each slot's lowest free offset is the lowest offset
 * clear of every placed slot live at some step of its interval; scanning
 * all placed slots for each one is quadratic, and at 10,000 layers the
 * training plan has 60,000 slots, half of them live at once. Instead a
 * segment tree over steps keeps, per tree node, the address ranges used
 * (merged into disjoint runs) by slots that cover the node's whole step
 * range (cover) and by slots live at any step in it (any). The slots live
 * during [a, b] are the any-ranges of the nodes that tile [a, b] and the
 * cover-ranges of their ancestors, so a query reads O(log steps) run lists
 * and skips over whole runs: the same offsets as the quadratic scan. */
typedef struct {
    int64_t lo, hi; /* [lo, hi) */
} Run;

typedef struct {
    Run *v; /* sorted, disjoint and not touching */
    int n, cap;
} Runs;

typedef struct {
    Runs *cover, *any; /* by tree node, 1-based heap order */
    int nsteps;        /* leaves: steps 0..nsteps-1 */
    Runs **hits;       /* a query's run lists */
    int nhits;
} StepTree;

/* The first run of r ending after x (r->n when none). */
static int runs_after(const Runs *r, int64_t x)
{
    int lo = 0, hi = r->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (r->v[mid].hi > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void runs_add(Runs *r, int64_t lo, int64_t hi)
{
    int i = runs_after(r, lo - 1), j = i; /* runs touching [lo, hi) are i..j-1 */
    while (j < r->n && r->v[j].lo <= hi)
        j++;
    if (i < j) {
        lo = lo < r->v[i].lo ? lo : r->v[i].lo;
        hi = hi > r->v[j - 1].hi ? hi : r->v[j - 1].hi;
    } else if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4;
        r->v = xrealloc(r->v, (size_t)r->cap * sizeof *r->v);
    }
    memmove(&r->v[i + 1], &r->v[j], (size_t)(r->n - j) * sizeof *r->v);
    r->n += 1 - (j - i);
    r->v[i] = (Run){lo, hi};
}

static void tree_add(StepTree *t, int node, int l, int r, const Slot *s)
{
    if (s->end < l || r < s->start)
        return;
    runs_add(&t->any[node], s->offset, s->offset + s->size);
    if (s->start <= l && r <= s->end) {
        runs_add(&t->cover[node], s->offset, s->offset + s->size);
        return;
    }
    int m = l + (r - l) / 2;
    tree_add(t, 2 * node, l, m, s);
    tree_add(t, 2 * node + 1, m + 1, r, s);
}

static void tree_query(StepTree *t, int node, int l, int r, int a, int b)
{
    if (b < l || r < a)
        return;
    if (a <= l && r <= b) {
        t->hits[t->nhits++] = &t->any[node];
        return;
    }
    t->hits[t->nhits++] = &t->cover[node];
    int m = l + (r - l) / 2;
    tree_query(t, 2 * node, l, m, a, b);
    tree_query(t, 2 * node + 1, m + 1, r, a, b);
}

/* The lowest offset at which s overlaps no placed slot live with it. */
static int64_t tree_lowest_free(StepTree *t, const Slot *s)
{
    t->nhits = 0;
    tree_query(t, 1, 0, t->nsteps - 1, s->start, s->end);
    int64_t off = 0;
    for (bool moved = true; moved;) {
        moved = false;
        for (int i = 0; i < t->nhits; i++) {
            const Runs *r = t->hits[i];
            int k = runs_after(r, off);
            if (k < r->n && r->v[k].lo < off + s->size) {
                off = r->v[k].hi;
                moved = true;
            }
        }
    }
    return off;
}

static void place(Plan *pl)
{
    MemPlan *p = pl->p;
    int n = pl->slots.n;
    if (n == 0)
        return;
    Slot **order = arena_alloc(pl->g->arena, (size_t)n * sizeof *order);
    for (int i = 0; i < n; i++)
        order[i] = &pl->slots.v[i];
    qsort(order, (size_t)n, sizeof *order, by_size_desc);
    /* steps 0..nsteps: roots live to nsteps, one past the last */
    StepTree t = {.nsteps = p->nsteps + 1};
    size_t nodes = 4 * (size_t)t.nsteps;
    t.cover = xcalloc(nodes, sizeof *t.cover);
    t.any = xcalloc(nodes, sizeof *t.any);
    t.hits = xcalloc(4 * 64, sizeof *t.hits); /* two per tree level at most */
    for (int i = 0; i < n; i++) {
        Slot *s = order[i];
        s->offset = tree_lowest_free(&t, s);
        tree_add(&t, 1, 0, t.nsteps - 1, s);
        if (s->scratch)
            p->scratch_offset[s->owner->id] = s->offset;
        if (p->arena_bytes < s->offset + s->size)
            p->arena_bytes = s->offset + s->size;
    }
    for (size_t i = 0; i < nodes; i++) {
        free(t.cover[i].v);
        free(t.any[i].v);
    }
    free(t.cover);
    free(t.any);
    free(t.hits);
}

static void totals(Plan *pl)
{
    MemPlan *p = pl->p;
    for (int s = 0; s < p->nsteps; s++) {
        Node *n = p->steps[s];
        Node *o = p->alias[n->id];
        if (pl->slot[o->id] < 0)
            continue; /* a view of a source */
        p->offset[n->id] = pl->slots.v[pl->slot[o->id]].offset;
        if (n->op == OP_LOOP_RESULT)
            p->offset[n->id] += p->loop_part[n->in[0]->id][attr_index(n)];
        if (!pass_memplan_is_view(p, n) &&
            add_overflows_i64(p->naive_bytes, align_up(p->bytes[n->id]), &p->naive_bytes))
            die("memplan: naive sum overflows");
    }
    for (int i = 0; i < pl->slots.n; i++)
        if (pl->slots.v[i].scratch &&
            add_overflows_i64(p->naive_bytes, pl->slots.v[i].size, &p->naive_bytes))
            die("memplan: naive sum overflows");
    int64_t *delta = arena_alloc(pl->g->arena, (size_t)(p->nsteps + 2) * sizeof *delta);
    for (int i = 0; i < pl->slots.n; i++) {
        delta[pl->slots.v[i].start] += pl->slots.v[i].size;
        delta[pl->slots.v[i].end + 1] -= pl->slots.v[i].size;
    }
    int64_t live = 0;
    for (int s = 0; s < p->nsteps; s++) {
        live += delta[s];
        if (p->peak_bytes < live)
            p->peak_bytes = live;
    }
}

MemPlan *pass_memplan(Graph *g, Node *const *roots, int nroots, ScratchFn scratch)
{
    Arena *a = g->arena;
    Plan pl = {.g = g, .scratch = scratch};
    for (int i = 0; i < g->nodes.n; i++)
        if (pl.nids <= g->nodes.v[i]->id)
            pl.nids = g->nodes.v[i]->id + 1;
    size_t nids = (size_t)(pl.nids ? pl.nids : 1);
    MemPlan *p = pl.p = arena_alloc(a, sizeof *p);
    p->offset = arena_alloc(a, nids * sizeof *p->offset);
    p->alias = arena_alloc(a, nids * sizeof *p->alias);
    p->bytes = arena_alloc(a, nids * sizeof *p->bytes);
    p->scratch_offset = arena_alloc(a, nids * sizeof *p->scratch_offset);
    p->scratch_bytes = arena_alloc(a, nids * sizeof *p->scratch_bytes);
    p->loop_part = arena_alloc(a, nids * sizeof *p->loop_part);
    pl.root = arena_alloc(a, nids * sizeof *pl.root);
    pl.first = arena_alloc(a, nids * sizeof *pl.first);
    pl.next = arena_alloc(a, nids * sizeof *pl.next);
    pl.tail = arena_alloc(a, nids * sizeof *pl.tail);
    pl.needed = arena_alloc(a, nids * sizeof *pl.needed);
    pl.step = arena_alloc(a, nids * sizeof *pl.step);
    pl.last = arena_alloc(a, nids * sizeof *pl.last);
    pl.slot = arena_alloc(a, nids * sizeof *pl.slot);
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        p->offset[n->id] = -1;
        p->scratch_offset[n->id] = -1;
        p->alias[n->id] = n;
        p->bytes[n->id] = value_bytes(g, n);
        pl.step[n->id] = pl.last[n->id] = pl.slot[n->id] = -1;
    }
    build_groups(&pl);
    mark_needed(&pl, roots, nroots);
    schedule(&pl, roots, nroots);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s]->op == OP_LOOP)
            loop_parts(&pl, p->steps[s]);
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s]->dtype == DT_UNKNOWN)
            die("memplan: %%%d has no type (run pass_shape first)", p->steps[s]->id);
    assign_storage(&pl);
    place(&pl);
    totals(&pl);
    return p;
}

bool pass_memplan_is_view(const MemPlan *p, const Node *n)
{
    return n->op == OP_LOOP_RESULT || (view_op(n) && p->alias[n->id] != n);
}

static const char *human(int64_t b, char *buf, size_t size)
{
    if (b >= 1 << 20)
        snprintf(buf, size, "%.2f MiB", (double)b / (1 << 20));
    else if (b >= 1 << 10)
        snprintf(buf, size, "%.2f KiB", (double)b / (1 << 10));
    else
        snprintf(buf, size, "%" PRId64 " B", b);
    return buf;
}

static int by_bytes_desc(const void *a, const void *b, void *ctx)
{
    const MemPlan *p = ctx;
    const Node *x = *(Node *const *)a, *y = *(Node *const *)b;
    if (p->bytes[x->id] != p->bytes[y->id])
        return p->bytes[x->id] > p->bytes[y->id] ? -1 : 1;
    return x->id - y->id;
}

static int by_scratch_desc(const void *a, const void *b, void *ctx)
{
    const MemPlan *p = ctx;
    const Node *x = *(Node *const *)a, *y = *(Node *const *)b;
    if (p->scratch_bytes[x->id] != p->scratch_bytes[y->id])
        return p->scratch_bytes[x->id] > p->scratch_bytes[y->id] ? -1 : 1;
    return x->id - y->id;
}

void pass_memplan_print_stats(FILE *f, const Graph *g, const MemPlan *p, const char *function_name)
{
    char h[32];
    fprintf(f, "memory plan for %s: %d steps", function_name, p->nsteps);
    if (g->batch)
        fprintf(f, ", max batch %" PRId64, g->max_batch);
    fputc('\n', f);
    fprintf(f, "  arena        %12" PRId64 " bytes (%s)\n", p->arena_bytes,
            human(p->arena_bytes, h, sizeof h));
    fprintf(f, "  naive sum    %12" PRId64 " bytes (%s)", p->naive_bytes,
            human(p->naive_bytes, h, sizeof h));
    if (p->naive_bytes > 0)
        fprintf(f, ", arena/naive %.3f", (double)p->arena_bytes / (double)p->naive_bytes);
    fprintf(f, "\n  lower bound  %12" PRId64 " bytes (%s)", p->peak_bytes,
            human(p->peak_bytes, h, sizeof h));
    if (p->peak_bytes > 0)
        fprintf(f, ", arena/bound %.3f", (double)p->arena_bytes / (double)p->peak_bytes);
    fputc('\n', f);

    /* The largest buffers: slot owners, by size. */
    Node **own = xmalloc((size_t)(p->nsteps ? p->nsteps : 1) * sizeof *own);
    int n = 0;
    for (int s = 0; s < p->nsteps; s++) {
        Node *x = p->steps[s];
        if (p->alias[x->id] == x && p->offset[x->id] >= 0)
            own[n++] = x;
    }
    qsort_r(own, (size_t)n, sizeof *own, by_bytes_desc, (void *)p);
    if (n > 0)
        fprintf(f, "  largest buffers:\n");
    for (int i = 0; i < n && i < 5; i++) {
        char sh[256];
        const Node *x = own[i];
        int shared = 0;
        for (int s = 0; s < p->nsteps; s++)
            shared += p->steps[s] != x && p->alias[p->steps[s]->id] == x;
        fprintf(f, "    %%%-5d %-16s %s%-20s %12" PRId64 " bytes at %" PRId64, x->id,
                op_info[x->op].text, ir_dtype_name(x->dtype),
                ir_shape_str(&x->shape, g->batch, sh, sizeof sh), p->bytes[x->id],
                p->offset[x->id]);
        if (shared)
            fprintf(f, " (+%d sharing it)", shared);
        fputc('\n', f);
    }

    /* Kernel scratch (im2col matrices, gates, scores): live in its own
     * step only, so many share the arena; the largest decide its size. */
    n = 0;
    int64_t total = 0;
    for (int s = 0; s < p->nsteps; s++) {
        Node *x = p->steps[s];
        if (p->scratch_bytes[x->id] > 0 && p->scratch_offset[x->id] >= 0) {
            own[n++] = x;
            total += p->scratch_bytes[x->id];
        }
    }
    if (n > 0) {
        qsort_r(own, (size_t)n, sizeof *own, by_scratch_desc, (void *)p);
        fprintf(f, "  kernel scratch: %d buffer%s, %" PRId64 " bytes (%s) in all, largest:\n", n,
                n == 1 ? "" : "s", total, human(total, h, sizeof h));
    }
    for (int i = 0; i < n && i < 3; i++) {
        const Node *x = own[i];
        fprintf(f, "    %%%-5d %-16s %12" PRId64 " bytes at %" PRId64 "\n", x->id,
                op_info[x->op].text, p->scratch_bytes[x->id], p->scratch_offset[x->id]);
    }
    free(own);
}
