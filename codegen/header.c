/*
 * The C header for a compiled model (SPEC 3): the size macros, the opaque
 * instance type and the prototypes of the entry points that emit.c
 * defines (for a target without an OS, those that need no heap or
 * files). Argument types follow element types (float, double, int32_t);
 * a model without a batch symbol has no batch argument. The header must
 * compile as C99 and as C++ with every warning enabled.
 */
#include <string.h>

#include "cg.h"

static const char *c_type(DType t)
{
    switch (t) {
    case DT_F32: return "float";
    case DT_F64: return "double";
    case DT_I32: return "int32_t";
    case DT_F16:
    case DT_BF16: return "uint16_t"; /* bit patterns: dlrt_f16_from_f32 and the rest */
    default: die("no C type for %s", ir_dtype_name(t));
    }
}

/* A prototype's parameter name for a tensor: its own, unless it would
 * clash with m, batch or a C/C++ keyword (then with a trailing '_'). */
static const char *arg_name(const char *name)
{
    static const char *const taken[] = {
        "m",        "batch",    "auto",     "bool",      "break",  "case",     "char",
        "class",    "const",    "continue", "default",   "delete", "do",       "double",
        "else",     "enum",     "explicit", "extern",    "false",  "float",    "for",
        "friend",   "goto",     "if",       "inline",    "int",    "long",     "namespace",
        "new",      "operator", "private",  "protected", "public", "register", "restrict",
        "return",   "short",    "signed",   "sizeof",    "static", "struct",   "switch",
        "template", "this",     "throw",    "true",      "try",    "typedef",  "typename",
        "union",    "unsigned", "using",    "virtual",   "void",   "volatile", "while"};
    for (int i = 0; i < countof(taken); i++)
        if (strcmp(name, taken[i]) == 0)
            return "_";
    return "";
}

static DType param_dtype(const Graph *g)
{
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->op == OP_PARAM)
            return g->nodes.v[i]->dtype;
    return DT_F32;
}

/* ", const T *x, const int32_t *y" for the inputs forward needs (t NULL)
 * or objective t's */
static void input_args(FILE *f, const Graph *g, const Train *t)
{
    int ninputs;
    bool *need = t ? cg_objective_inputs(g, t, &ninputs) : cg_needed_inputs(g, &ninputs);
    int k = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *x = g->nodes.v[i];
        if (x->op == OP_INPUT && need[k++])
            fprintf(f, ", const %s *%s%s", c_type(x->dtype), x->name, arg_name(x->name));
    }
}

/* Objective t's functions: NAME_train_step, ... or NAME_train_step_OBJ, ...;
 * the first also declares NAME_grads, which they share. */
static void training_prototypes(FILE *f, const Graph *g, const Train *t)
{
    const char *n = g->name;
    const char *pt = c_type(param_dtype(g)), *lt = c_type(t->loss->dtype);
    const char *batch = g->batch ? ", int batch" : "";
    const char *o = t->name ? arena_printf(g->arena, "_%s", t->name) : "";
    static const char *const loss_fns[][2] = {
        {"train_step", "one step: forward, backward, update; *loss before the update"},
        {"compute_gradients", "the step in two halves: adds this batch's gradients to\n"
                              " * NAME_grads, then NAME_apply_gradients updates from them"},
        {"evaluate", "the loss with inference-mode semantics; changes nothing"},
    };
    if (t->name)
        fprintf(f, "/* objective %s (docs/TRAINING.md): the inputs its loss needs, in\n"
                   " * declaration order; it updates only its own parameters */\n",
                t->name);
    else
        fputs("/* training (docs/TRAINING.md): every input, in declaration order */\n", f);
    for (int i = 0; i < countof(loss_fns); i++) {
        fprintf(f, "/* %s */\nint %s_%s%s(%s *m%s", loss_fns[i][1], n, loss_fns[i][0], o, n, batch);
        input_args(f, g, t);
        fprintf(f, ", %s *loss);\n", lt);
    }
    fprintf(f, "int %s_apply_gradients%s(%s *m);\n", n, o, n);
    if (t == g->train)
        fprintf(f, "/* the gradients, laid out like NAME_params */\n%s *%s_grads(%s *m);\n", pt, n,
                n);
    fputs("/* the base learning rate (DLRT_EINVAL, nothing set, when it is negative,\n"
          " * NaN or infinite), and the rate of the next step */\n",
          f);
    fprintf(f, "int %s_set_learning_rate%s(%s *m, %s lr);\n", n, o, n, lt);
    fprintf(f, "%s %s_learning_rate%s(const %s *m);\n", lt, n, o, n);
    fprintf(f, "/* optimizer steps applied so far */\nint64_t %s_step%s(const %s *m);\n", n, o, n);
    fputs("/* the metric reduce_on_plateau watches (say, a validation loss), once an\n"
          " * epoch; DLRT_ENONFINITE for NaN or an infinity; does nothing with\n"
          " * other schedules */\n",
          f);
    fprintf(f, "int %s_report_metric%s(%s *m, double metric);\n\n", n, o, n);
}

void cg_write_header(FILE *f, const Graph *g, const CgPlans *plans, const Layout *layout,
                     const CgOptions *o)
{
    bool hosted = !cg_freestanding(o);
    const char *n = g->name;
    fprintf(f, "/* %s.h: generated by dlc %s from model %s. Do not edit. */\n", n, DLC_VERSION, n);
    fprintf(f, "#ifndef DLC_MODEL_%s_H\n#define DLC_MODEL_%s_H\n\n", n, n);
    fputs("#include <stddef.h>\n#include <stdint.h>\n\n#include <dlrt.h>\n\n", f);
    fputs("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", f);
    if (g->batch)
        fprintf(f, "#define %s_MAX_BATCH %lld\n", n, (long long)g->max_batch);
    fprintf(f, "#define %s_NUM_PARAMS %lld\n", n, (long long)layout->num_param_scalars);
    fprintf(f, "#define %s_STATE_BYTES %lld\n\n", n, (long long)layout->state_bytes);
    fprintf(f, "typedef struct %s %s;\n\n", n, n);

    if (hosted) {
        fprintf(f,
                "/* malloc'd and initialized; NULL on failure */\n%s *%s_create(uint64_t seed);\n",
                n, n);
        fprintf(f, "void %s_destroy(%s *m);\n", n, n);
    } else {
        fputs("/* for a target without an OS: no NAME_create, NAME_destroy, NAME_save or\n"
              " * NAME_load (no heap, no files); an instance lives in a static buffer */\n",
              f);
    }
    fprintf(f,
            "/* initializes an instance in caller-owned memory: mem, 64-byte aligned, of at\n"
            " * least %s_STATE_BYTES bytes (m is mem, or NULL); the instance is (%s *)mem */\n",
            n, n);
    fprintf(f, "int %s_init(%s *m, void *mem, size_t size, uint64_t seed);\n\n", n, n);

    fprintf(f,
            "/* inference: the inputs the outputs need, in declaration order, then the\n"
            " * outputs */\nint %s_forward(%s *m",
            n, n);
    if (g->batch)
        fputs(", int batch", f);
    input_args(f, g, NULL);
    for (int i = 0; i < g->outputs.n; i++)
        fprintf(f, ", %s *%s%s", c_type(g->outputs.v[i].node->dtype), g->outputs.v[i].name,
                arg_name(g->outputs.v[i].name));
    fputs(");\n", f);
    fprintf(f,
            "/* the same with arrays of pointers: NAME_info()->forward */\n"
            "int %s_forward_generic(void *m, int batch, const void *const *inputs,\n"
            "    void *const *outputs);\n\n",
            n);

    for (int k = 0; plans->train && k < plans->nobj; k++)
        training_prototypes(f, g, plans->obj[k].train);
    const char *pt = c_type(param_dtype(g));
    fprintf(f, "/* all parameters, one flat array in declaration order */\n");
    fprintf(f, "%s *%s_params(%s *m);\n", pt, n, n);
    if (hosted) {
        fprintf(f, "int %s_save(const %s *m, const char *path);\n", n, n);
        fprintf(f, "int %s_load(%s *m, const char *path);\n", n, n);
    }
    fprintf(f, "const dlrt_model_info *%s_info(void);\n\n", n);
    fputs("#ifdef __cplusplus\n}\n#endif\n\n#endif\n", f);
}
