#!/usr/bin/env python3
"""The differential tester (README.md): random models from gen.py, each
compiled by dlc at -O0 and -O2 and run by tests/exec/harness.c against the
f64 reference interpreter; f64 models' gradients also go through
tests/gradcheck/harness.c, and half of the models with parameters take a
few optimizer steps and a checkpoint round trip through train_harness.c;
a third of the f32 ones also run with --weights=f16 or bf16, a quarter of
all also at -O2 with --no-checks; models of piecewise-linear ops draw their
inputs in a wider range (gen.wide_range). A failing model is shrunk and
printed.

    difftest.py --param dlc=... --param cc=... (the lit params, CMake's
                build/DIR/difftest.sh passes them) [--seed S] [--count N]
                [--jobs J] [--families F,...] [--no-gradcheck] [--keep DIR]
                [--expect-clean]

Exit status: 0 when every model agreed (or without --expect-clean), 1 when
one failed, 2 on bad usage.
"""
import argparse
import concurrent.futures
import itertools
import os
import shutil
import subprocess
import sys
import re
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

F32_TOL = "rtol=1e-4 atol=1e-4"
F64_TOL = "rtol=1e-9 atol=1e-9"
TIMEOUT = 120


class Tools:
    def __init__(self, params):
        p = dict(params)
        src = p["source_dir"]
        self.dlc = p["dlc"]
        # as lit.cfg.py's %cc, which also builds each harness at -O0: the
        # harnesses run for milliseconds, and compiling them at -O1 was three
        # quarters of a campaign's time
        cc = " ".join([p.get("cc", "cc"), "-std=c11 -D_GNU_SOURCE -g -O0", f"-I{src}/runtime",
                       "-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror",
                       p.get("cflags", "")])
        # each harness's compile command and the libraries it links with
        self.cc = cc
        self.exec_cc = (" ".join([cc, f"-I{src}/tests/common", p.get("exec_includes", ""),
                                  f"-c {src}/tests/exec/harness.c"]), p.get("exec_libs", ""))
        self.gc_cc = (" ".join([cc, f"-I{src}/tests/common", f"-c {src}/tests/gradcheck/harness.c"]),
                      "")
        self.train_cc = (" ".join([cc, f"-I{src}/tests/common", f"-I{src}/tests/train", "-I.",
                                   "-DTYPED_HEADER='\"{typed}\"'",
                                   f"-c {src}/tests/difftest/train_harness.c"]),
                         p.get("train_reference", ""))
        # the several-objectives harness, compiled per model (its typed
        # header names each objective's functions)
        self.obj_cc = (" ".join([cc, f"-I{src}/tests/common", f"-I{src}/tests/train", "-I.",
                                 "-DTYPED_HEADER='\"typed_obj.h\"'",
                                 f"-c {src}/tests/difftest/objectives_harness.c"]),
                       p.get("train_reference", ""))
        self.src = src
        self.fault = False
        self.nochecks_fault = False
        self.train_fault = False
        self.obj_fault = False
        self.families = None
        self.dlrt = p.get("dlrt", "-ldlrt -lopenblas -lpthread -lm")
        self.cflags = p.get("cflags", "")
        # harness -> its object compiled once against dtshim.h (prepare)
        self.shim = None
        self.harness_objs = {}
        self.lock = threading.Lock()

    def prepare(self, root):
        """Sets up what every model's harnesses share (share_libs and the
        shim below) in the campaign's folder root."""
        self.share_libs(root)
        # Each harness is compiled once against dtshim.h, a fixed model
        # interface (opaque dtshim, dtshim_create, ...; the sizes as
        # variables), and each model gets a small shim.c of wrappers that
        # include its header and call its functions: compiling the
        # harnesses per model was a third of the CPU time left. The
        # wrappers convert as the harness's own calls did (a double rate to
        # set_learning_rate's type, the parameters' pointer to void *), and
        # the model's header is still compiled with the harnesses' warnings.
        decl = "\n".join(f"{r} dtshim{suf}({a});" for suf, (r, a, _) in SHIM.items())
        with open(os.path.join(root, "dtshim.h"), "w") as f:
            f.write("#include <stddef.h>\n#include <stdint.h>\n#include <dlrt.h>\n"
                    "typedef struct dtshim dtshim;\n" + decl + "\n"
                    "extern const size_t dtshim_STATE_BYTES_v;\n"
                    "extern const int64_t dtshim_NUM_PARAMS_v;\n"
                    "#define dtshim_STATE_BYTES dtshim_STATE_BYTES_v\n"
                    "#define dtshim_NUM_PARAMS dtshim_NUM_PARAMS_v\n"
                    "int dtshim_typed_train_step(void *m, int batch, const void *const *in, "
                    "void *loss);\n")
        with open(os.path.join(root, "dtshim_typed.h"), "w") as f:
            f.write("#define typed_train_step dtshim_typed_train_step\n")
        self.uses = {}
        for h, path in (("harness", "tests/exec/harness.c"), ("gc-harness", "tests/gradcheck/harness.c"),
                        ("train-harness", "tests/difftest/train_harness.c")):
            with open(os.path.join(self.src, path)) as f:
                self.uses[h] = sorted(set(re.findall(r"MODEL_FN\((_\w+)\)", f.read())))
            if any(u not in SHIM and u not in ("_STATE_BYTES", "_NUM_PARAMS") for u in self.uses[h]):
                return  # a harness calls what the shim does not know: per model, as before
        self.shim = root

    def harness_obj(self, harness, cc):
        """harness's object against dtshim.h, compiled on first use: its
        path, or None and the log when it fails."""
        with self.lock:
            if harness not in self.harness_objs:
                ho = os.path.join(self.shim, f"{harness}.o")
                typed = os.path.join(self.shim, "dtshim_typed.h")
                rc, log = run(f"{cc[0].format(typed=typed)} -DMODEL=dtshim "
                              f"-DMODEL_HEADER='\"{self.shim}/dtshim.h\"' -o {ho}", self.shim,
                              shell=True)
                self.harness_objs[harness] = (ho if rc == 0 else None, log)
            return self.harness_objs[harness]

    def shim_source(self, harness, header):
        """shim.c for harness and the model's header: dtshim's functions
        that harness calls, wrapping the model's."""
        out = [f'#include "{self.shim}/dtshim.h"', f'#include "{header}"']
        for suf in self.uses[harness]:
            if suf in ("_STATE_BYTES", "_NUM_PARAMS"):
                t = "size_t" if suf == "_STATE_BYTES" else "int64_t"
                out.append(f"const {t} dtshim{suf}_v = difftest{suf};")
                continue
            r, a, call = SHIM[suf]
            ret = "" if r == "void" else "return "
            cast = "(dtshim *)(void *)" if r == "dtshim *" else "(void *)" if r == "void *" else ""
            out.append(f"{r} dtshim{suf}({a})\n{{\n    {ret}{cast}difftest{suf}({call});\n}}")
        if harness == "train-harness":
            out.append('#include "typed.h"')
            out.append("int dtshim_typed_train_step(void *m, int batch, const void *const *in, "
                       "void *loss)\n{\n    return typed_train_step(m, batch, in, loss);\n}")
        return "\n".join(out) + "\n"

    def share_libs(self, root):
        """Links every harness against one shared library of the static
        ones (runtime, reference, passes, IR), made once per campaign, with
        gold when there is one: linking each of a model's three to five
        programs against the archives was a third of a campaign's CPU time
        (0.17 s a link, 0.04 s so). The model's object and the harnesses'
        are linked as before; only where the runtime's code lives changes.
        Not under the sanitizers, whose runtimes want the static link."""
        if "-fsanitize" in self.cflags:
            return
        libs = [self.exec_cc[1], self.train_cc[1], self.dlrt]
        words = " ".join(libs).split()
        archives = list(dict.fromkeys(w for w in words if w.endswith(".a")))
        rest = " ".join(dict.fromkeys(w for w in words if not w.endswith(".a")))
        so = os.path.join(root, "libdifftest_rt.so")
        rc, _ = run(f"{self.cc} -shared -o {so} -Wl,--whole-archive {' '.join(archives)} "
                    f"-Wl,--no-whole-archive {rest}", root, shell=True)
        if rc != 0:
            return
        gold = run(f"{self.cc} -fuse-ld=gold -Wl,--version", root, shell=True)[0] == 0
        self.dlrt = (f"{'-fuse-ld=gold ' if gold else ''}-L{root} -ldifftest_rt "
                     f"-Wl,-rpath,{root} {rest}")
        self.exec_cc = (self.exec_cc[0], "")
        self.train_cc = (self.train_cc[0], "")


# dtshim's functions (Tools.prepare): suffix -> return type, parameters,
# the model's function's arguments
M = "(difftest *)(void *)m"
SHIM = {
    "_create": ("dtshim *", "uint64_t seed", "seed"),
    "_destroy": ("void", "dtshim *m", M),
    "_init": ("int", "dtshim *m, void *mem, size_t size, uint64_t seed", f"{M}, mem, size, seed"),
    "_info": ("const dlrt_model_info *", "void", ""),
    "_params": ("void *", "dtshim *m", M),
    "_grads": ("void *", "dtshim *m", M),
    "_save": ("int", "const dtshim *m, const char *path", "(const difftest *)(const void *)m, path"),
    "_load": ("int", "dtshim *m, const char *path", f"{M}, path"),
    "_step": ("int64_t", "const dtshim *m", "(const difftest *)(const void *)m"),
    "_learning_rate": ("double", "const dtshim *m", "(const difftest *)(const void *)m"),
    "_set_learning_rate": ("int", "dtshim *m, double lr", f"{M}, lr"),
    "_report_metric": ("int", "dtshim *m, double v", f"{M}, v"),
}


def run(cmd, cwd, shell=False):
    try:
        r = subprocess.run(cmd, cwd=cwd, shell=shell, capture_output=True, text=True,
                           timeout=TIMEOUT, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        return -999, "timeout"


def kind_of(stage, rc):
    """A failure's class; the shrinker keeps a model only while it fails the same way."""
    if rc == -999:
        return f"{stage}-timeout"
    if rc < 0 or rc >= 128:
        return f"{stage}-crash"
    return f"{stage}-fails"


gradcheckable = gen.gradcheckable


def settings(nodes, seed, for_gc, batch=None, train=None):
    """The model's EXEC, GRADCHECK and TRAINCHECK lines; batch: one batch
    size instead of the default ones (the shrinker's); train: the
    TRAINCHECK words (gen.train_spec)."""
    dt = gen.floats(nodes)
    tol = F64_TOL if dt == "f64" else F32_TOL
    wide = gen.wide_range(nodes, seed)
    if wide:
        # the wide inputs in [-2R, 2R]: atol R times, the outputs' size
        rtol, atol = (w.split("=")[1] for w in tol.split())
        tol = f"rtol={rtol} atol={float(atol) * wide:g}"
    lines = [f"# EXEC: batches={batch or '1,2,5'} range=-2,2 seed={seed} " + tol]
    lines += [f"# EXEC: input={n.name} range={n.exec_range}" for n in nodes if n.exec_range]
    if wide:
        deg = gen.wide_degrees(nodes)
        lines += [f"# EXEC: input={n.name} range={-2 * wide},{2 * wide}" for n in nodes
                  if n.kind == "input" and deg[n.name]]
    if for_gc:
        words = [f"batches={batch or '3,1'}", f"seed={seed}"]
        for n in nodes:
            words += [w for w in n.gc_words if w not in words]
        for n in nodes:
            if n.gc_range:
                words.append(f"input={n.name} range={n.gc_range}")
        lines.append("# GRADCHECK: " + " ".join(words))
    if train:
        words = list(train) + ([f"batch={batch}"] if batch else [])
        words += [f"input={n.name} range={n.gc_range}" + (f" hi={n.hi}" if n.hi else "")
                  for n in nodes if n.gc_range]
        lines.append("# TRAINCHECK: " + " ".join(words))
    return lines


def typed_call(nodes, name):
    """typed.h for train_harness.c: typed_train_step, the model's typed
    NAME_train_step called with the generic entries' arrays (every input in
    declaration order, then the loss's two inputs' worth: the difftest_r
    weights check() adds)."""
    ctype = {"f32": "float", "f64": "double", "i32": "int32_t"}
    ins = [n.dtype for n in nodes if n.kind == "input"]
    ins += [n.dtype for n in nodes if n.kind == "op" and n.output]
    args = "".join(f", (const {ctype[t]} *)in[{i}]" for i, t in enumerate(ins))
    lt = ctype[nodes_loss_dtype(nodes)]
    return ("static int typed_train_step(void *m, int batch, const void *const *in, void *loss)\n"
            f"{{\n    return {name}_train_step(({name} *)m, batch{args}, ({lt} *)loss);\n}}\n")


def nodes_loss_dtype(nodes):
    """The loss's type: the outputs', which are the model's float type."""
    return [n.dtype for n in nodes if n.kind == "op" and n.output][0]



def compile_and_run(tools, workdir, src, lvl, flags, obj, exe, cc, args, stage, harness, built,
                    compiled=False):
    """dlc at -O{lvl} into obj.o (unless compiled: obj.o is there), a
    harness built with cc (its compile command and libraries) into exe,
    then exe with args: None when all pass, else (kind, log). built maps
    (harness, header) to the harness's object already compiled against that
    header (the -O0 and -O2 headers are normally the same)."""
    rc, log = (0, "") if compiled else run(
        [tools.dlc, src] + flags + [f"-O{lvl}", "-o", f"{obj}.o"], workdir)
    if rc != 0:
        tag = "".join("-" + f.split("=")[1] for f in flags if f.startswith("--weights="))
        tag += "-nochecks" if "--no-checks" in flags else ""
        train = tag if flags else "-train"
        return kind_of(f"dlc{train}-O{lvl}", rc), log
    with open(os.path.join(workdir, f"{obj}.h"), "rb") as f:
        key = (harness, f.read())
    if key not in built:
        ho = f"{harness}-{len(built)}.o"
        if tools.shim:
            with open(os.path.join(workdir, f"{ho}.c"), "w") as f:
                f.write(tools.shim_source(harness, f"{workdir}/{obj}.h"))
            rc, log = run(f"{tools.cc} -c {ho}.c -o {ho}", workdir, shell=True)
        else:
            rc, log = run(f"{cc[0].format(typed='typed.h')} -DMODEL=difftest "
                          f"-DMODEL_HEADER='\"{workdir}/{obj}.h\"' -o {ho}", workdir, shell=True)
        if rc != 0:
            return f"{harness}-build-fails", log
        built[key] = ho
    objs = built[key]
    if tools.shim:
        hobj, log = tools.harness_obj(harness, cc)
        if hobj is None:
            return f"{harness}-build-fails", log
        objs = f"{hobj} {objs}"
    rc, log = run(f"{tools.cc} {objs} {obj}.o {cc[1]} {tools.dlrt} -o {exe}", workdir,
                  shell=True)
    if rc != 0:
        return f"{harness}-build-fails", log
    rc, log = run([f"./{exe}"] + args, workdir)
    if rc != 0:
        return kind_of(f"{stage}-O{lvl}", rc), log
    return None

def objectives_model(nodes, text, spec, extra, words):
    """The model text with one `train ... as oK;` per objective (the
    model's own spec as o0, then extra's) and its OBJCHECK lines (words:
    the training check's)."""
    outs = [n for n in nodes if n.kind == "op" and n.output]
    objs = [(spec, None, range(len(outs)), None)] + list(extra)
    body = ""
    oc = ["# OBJCHECK: " + " ".join(words)]
    for k, (opt, sub, chosen, trained) in enumerate(objs):
        own = [gen.Node(f"difftest_s{k}_{i}", "input", outs[i].dtype, outs[i].shape)
               for i in chosen]
        body += "".join(f"    input {r.name}: {r.dtype}{gen.dims_text(r.shape)};\n" for r in own)
        body += f"    difftest_l{k} = " + " + ".join(
            f"sum({outs[i].name} * {r.name})" for i, r in zip(chosen, own)) + ";\n"
        body += (f"    train difftest_l{k} with {opt}"
                 + (f", params = [{', '.join(sub)}]" if sub else "") + f" as o{k};\n")
        oc.append(f"# OBJCHECK: obj=o{k} params={','.join(trained) if trained else 'all'}")
    lines = text.split("\n")
    text = "\n".join(lines[:1] + oc + lines[1:])
    return text[: text.rindex("}")] + body + "}\n", len(objs)


def typed_objectives(header, nobj):
    """typed_obj.h: each objective's NAME_train_step_oK,
    NAME_learning_rate_oK, NAME_set_learning_rate_oK and
    NAME_report_metric_oK behind typed_train_step(k, ...),
    typed_learning_rate(k, ...), typed_set_learning_rate(k, ...) and
    typed_report_metric(k, ...), the inputs cast to the types of the
    prototype in the model's header (dlc's: the inputs its loss needs)."""
    steps, rates, sets, reports = [], [], [], []
    for k in range(nobj):
        m = re.search(rf"int difftest_train_step_o{k}\(difftest \*m, int batch, (.*), (\w+) \*loss\);",
                      header)
        if not m:
            return None
        types = re.findall(r"const (\w+) \*\w+", m[1])
        args = "".join(f", (const {t} *)in[{i}]" for i, t in enumerate(types))
        steps.append(f"    case {k}: return difftest_train_step_o{k}((difftest *)m, batch{args}, "
                     f"({m[2]} *)loss);")
        rates.append(f"    case {k}: return (double)difftest_learning_rate_o{k}((const difftest *)m);")
        sets.append(f"    case {k}: return difftest_set_learning_rate_o{k}((difftest *)m, lr);")
        reports.append(f"    case {k}: return difftest_report_metric_o{k}((difftest *)m, v);")
    return ("static int typed_train_step(int k, void *m, int batch, const void *const *in, "
            "void *loss)\n{\n    switch (k) {\n" + "\n".join(steps)
            + "\n    }\n    return -1;\n}\n"
            "static double typed_learning_rate(int k, const void *m)\n{\n    switch (k) {\n"
            + "\n".join(rates) + "\n    }\n    return -1;\n}\n"
            "static int typed_set_learning_rate(int k, void *m, double lr)\n{\n    switch (k) {\n"
            + "\n".join(sets) + "\n    }\n    return -1;\n}\n"
            "static int typed_report_metric(int k, void *m, double v)\n{\n    switch (k) {\n"
            + "\n".join(reports) + "\n    }\n    return -1;\n}\n")


def run_objectives(tools, workdir, src_text, nobj):
    """The several-objectives check: mo.dl at -O2 through
    objectives_harness.c, compiled against its header (no shim: its
    functions are per objective). None or (kind, log)."""
    with open(os.path.join(workdir, "mo.dl"), "w") as f:
        f.write(src_text)
    rc, log = run([tools.dlc, "mo.dl", "-O2", "-o", "mo.o"], workdir)
    if rc != 0:
        return kind_of("dlc-objectives-O2", rc), log
    with open(os.path.join(workdir, "mo.h")) as f:
        typed = typed_objectives(f.read(), nobj)
    if typed is None:
        return "objectives-harness-build-fails", "mo.h lacks an objective's train_step"
    with open(os.path.join(workdir, "typed_obj.h"), "w") as f:
        f.write(typed)
    cc, libs = tools.obj_cc
    rc, log = run(f"{cc} -DMODEL=difftest -DMODEL_HEADER='\"{workdir}/mo.h\"' -o oh.o", workdir,
                  shell=True)
    if rc == 0:
        rc, log = run(f"{tools.cc} oh.o mo.o {libs} {tools.dlrt} -o obj2", workdir, shell=True)
    if rc != 0:
        return "objectives-harness-build-fails", log
    rc, log = run(["./obj2", "mo.dl"], workdir)
    if rc != 0:
        return kind_of("objectives-O2", rc), log
    return None


def check(tools, nodes, seed, workdir, do_gc, batch=None):
    """None when the model agrees, else (kind, log)."""
    os.makedirs(workdir, exist_ok=True)
    gc = do_gc and gradcheckable(nodes)
    spec = gen.train_spec(seed, tools.families) if any(n.kind == "param" for n in nodes) else None
    train = spec and spec[1] + (["fault=1.001"] if tools.train_fault else [])
    text = gen.render(nodes, "difftest", seed, settings(nodes, seed, gc, batch, train))
    extra = gen.objectives_spec(seed, nodes) if spec else []
    if extra:
        words = train + ([f"batch={batch}"] if batch else [])
        words += ["fault=1.001"] if tools.obj_fault and not tools.train_fault else []
        words += [f"input={n.name} range={n.gc_range}" + (f" hi={n.hi}" if n.hi else "")
                  for n in nodes if n.gc_range]
        objectives = objectives_model(nodes, text, spec[0], extra, words)
    if gc or spec:
        # the loss weighs every output element with a random input, a
        # generic linear function of the outputs: the sum of their squares
        # said nothing about what comes before a batch_norm (its output's
        # squares sum to N var / (var + eps), seed 100368), a plain sum
        # nothing about softmax (its outputs sum to 1)
        outs = [n for n in nodes if n.kind == "op" and n.output]
        body = "".join(f"    input difftest_r{i}: {o.dtype}{gen.dims_text(o.shape)};\n"
                       for i, o in enumerate(outs))
        body += "    difftest_loss = " + " + ".join(
            f"sum({o.name} * difftest_r{i})" for i, o in enumerate(outs)) + ";\n"
        body += f"    train difftest_loss with {spec[0] if spec else 'sgd(lr = 0.01)'};\n}}\n"
        text = text[: text.rindex("}")] + body
    dl = os.path.join(workdir, "m.dl")
    with open(dl, "w") as f:
        f.write(text)
    src = nc_src = "m.dl"
    if tools.fault or tools.nochecks_fault:
        # the compiled model's last output off by 0.1%: the reference reads
        # the true one, so the tester must report and shrink a mismatch
        lines = text.split("\n")
        i = max(j for j, ln in enumerate(lines) if ln.startswith("    output "))
        lines[i] = lines[i].replace(" = ", " = 1.001 * (", 1).replace(";", ");")
        with open(os.path.join(workdir, "fault.dl"), "w") as f:
            f.write("\n".join(lines))
        src = "fault.dl" if tools.fault else src
        nc_src = "fault.dl"
    rc, log = run([tools.dlc, "m.dl", "--dump-ir=shape", "--emit=ir", "-o", "/dev/null"], workdir)
    if rc != 0:
        return kind_of("dlc", rc), log
    with open(os.path.join(workdir, "m.ir"), "w") as f:
        f.write(log)
    built = {}
    for lvl in (0, 2):
        mode = ["--dump", "m.out"] if lvl == 0 else ["--against", "m.out"]
        bad = compile_and_run(tools, workdir, src, lvl, ["--inference-only"], f"m{lvl}", f"e{lvl}",
                              tools.exec_cc, ["m.ir", "m.dl", "--level", str(lvl)] + mode,
                              "exec", "harness", built)
        if bad:
            return bad
    if gen.no_checks(seed):
        # the checks compiled out change nothing for valid inputs (API.md,
        # Checked inputs): -O2 with --no-checks against the -O0 outputs
        bad = compile_and_run(tools, workdir, nc_src, 2, ["--inference-only", "--no-checks"],
                              "n2", "en2", tools.exec_cc,
                              ["m.ir", "m.dl", "--level", "2", "--against", "m.out"],
                              "exec-nochecks", "harness", built)
        if bad:
            return bad
    half = gen.half_weights(nodes, seed)
    if half:
        # the same model with its f32 parameters stored as f16 or bf16
        # (inference only): the reference reads the rounded weights from
        # the instance, its IR says their type
        rc, log = run([tools.dlc, "m.dl", f"--weights={half}", "--dump-ir=shape", "--emit=ir",
                       "-o", "/dev/null"], workdir)
        if rc != 0:
            return kind_of(f"dlc-{half}", rc), log
        with open(os.path.join(workdir, "mh.ir"), "w") as f:
            f.write(log)
        for lvl in (0, 2):
            mode = ["--dump", "mh.out"] if lvl == 0 else ["--against", "mh.out"]
            bad = compile_and_run(tools, workdir, src, lvl, ["--inference-only", f"--weights={half}"],
                                  f"h{lvl}", f"eh{lvl}", tools.exec_cc,
                                  ["mh.ir", "m.dl", "--level", str(lvl)] + mode, f"exec-{half}",
                                  "harness", built)
            if bad:
                return bad
    if gc:
        for lvl in (0, 2):
            bad = compile_and_run(tools, workdir, src, lvl, [], f"g{lvl}", f"gc{lvl}", tools.gc_cc,
                                  ["m.dl"], "gradcheck", "gc-harness", built)
            if bad:
                return bad
    if spec:
        # a few optimizer steps at -O2 (the levels agree above), through
        # the generic entries and the typed train_step; the gradient
        # check's object when there is one
        with open(os.path.join(workdir, "typed.h"), "w") as f:
            f.write(typed_call(nodes, "difftest"))
        bad = compile_and_run(tools, workdir, src, 2, [], "g2" if gc else "t2", "tr2",
                              tools.train_cc, ["m.dl"], "train", "train-harness", built,
                              compiled=gc)
        if bad:
            return bad
    if extra:
        bad = run_objectives(tools, workdir, *objectives)
        if bad:
            return bad
    return None


# Shrinking. A model is a Case: the generator's seed and overrides of the
# sizes it draws (gen.Gen.dim), the edits made to the nodes it draws, and
# one batch size or the default ones; the shrinker keeps each smaller Case
# that still fails the same way.

prune = gen.prune
# the families of --families (gen.FAMILIES), None for all: one setting
# of the campaign, in a list so the shrinker's Cases see it
FAMILIES = [None]


class Case:
    def __init__(self, seed, over=None, edits=(), batch=None):
        self.seed = seed
        self.over = dict(over or {})
        self.edits = tuple(edits)
        self.batch = batch

    def but(self, over=None, edit=None, batch=None):
        c = Case(self.seed, self.over, self.edits, self.batch)
        c.over.update(over or {})
        c.edits += (edit,) if edit else ()
        c.batch = batch or self.batch
        return c

    def build(self):
        """The nodes (None when an edit no longer applies: a size changed
        the model's structure) and the sizes drawn."""
        nodes, drawn = gen.generate_drawn(self.seed, self.over, FAMILIES[0])
        for e in self.edits:
            nodes = apply_edit(nodes, e)
            if nodes is None:
                break
        return nodes, drawn


def edits(nodes):
    """The edits worth trying on nodes, each a tuple apply_edit takes: keep
    one output ("only", name); bypass an op, its users taking one of its
    same-shaped operands ("bypass", op, operand); an output's operand as the
    output instead, cutting a chain's tail ("tail", op, operand)."""
    outs = [n for n in nodes if n.output]
    if len(outs) > 1:
        for o in outs:
            yield ("only", o.name)
    for n in reversed(nodes):
        if n.kind == "op":
            for a in dict.fromkeys(n.args):
                yield ("bypass", n.name, a)
    for n in nodes:
        if n.kind == "op" and n.output:
            for a in n.args:
                yield ("tail", n.name, a)


def apply_edit(nodes, e):
    """nodes edited as e says and pruned, or None when e does not apply."""
    by = {n.name: n for n in nodes}
    n = by.get(e[1])
    if n is None or (e[0] != "only" and (n.kind != "op" or e[2] not in n.args)):
        return None
    if e[0] == "only":
        if not n.output:
            return None
        c = [m.copy() for m in nodes]
        for m in c:
            m.output = m.name == n.name
        return prune(c)
    a = e[2]
    src = by[a]
    if e[0] == "tail":
        if not n.output or src.kind != "op":
            return None
        c = [m.copy() for m in nodes]
        for m in c:
            m.output = (m.output and m.name != n.name) or m.name == a
        return prune(c)
    if src.shape != n.shape or src.dtype != n.dtype or (n.output and src.kind != "op"):
        return None
    c = []
    for m in nodes:
        if m is not n:
            m2 = m.copy()
            m2.args = [a if x == n.name else x for x in m2.args]
            m2.output = m2.output or (n.output and m2.name == a)
            c.append(m2)
    return prune(c) if any(m.output for m in c) else None


def size(nodes, batch):
    """What the shrinker minimizes: ops, outputs, then elements in all."""
    b = batch or gen.MAX_BATCH
    elems = 0
    for n in nodes:
        p = 1
        for d in n.shape:
            p *= b if d == gen.BATCH else d
        elems += p
    return (sum(n.kind == "op" for n in nodes), sum(n.output for n in nodes), elems)


def smaller_cases(case, nodes, drawn):
    """Cases with fewer ops or outputs (edits), then with one batch size
    (1, then 2), then with a smaller size drawn (each draw its smallest
    alternative, then the next one below it): each with its nodes, smaller
    than nodes by size()."""
    now = size(nodes, case.batch)
    for e in edits(nodes):
        c = apply_edit(nodes, e)
        if c is not None and size(c, case.batch) < now:
            yield case.but(edit=e), c
    if case.batch is None:
        for b in (1, 2):
            yield case.but(batch=b), nodes
    # each size alone, then two that no longer build alone and were drawn
    # equal (an edit bypassed an op whose shape was its operand's, so both
    # must change at once), then every draw of a value at once
    seen, broken = set(), []
    tries = []
    for i, (v, seq) in enumerate(drawn):
        below = sorted({x for x in seq if x < v})
        tries += [{i: x} for x in dict.fromkeys(below[:1] + below[-1:])]

    def pairs():
        for k, i in enumerate(broken):
            for j in broken[k + 1:]:
                (v, si), (w, sj) = drawn[i], drawn[j]
                for x in sorted(set(si) & set(sj)):
                    if v == w and x < v:
                        yield {i: x, j: x}

    def groups():
        for v in sorted({v for v, _ in drawn}, reverse=True):
            for x in range(1, v):
                yield {i: x for i, (w, seq) in enumerate(drawn) if w == v and x in seq}

    for over in itertools.chain(tries, pairs(), groups()):
        c = case.but(over=over)
        cn = c.build()[0]
        if cn is None:
            if len(over) == 1:
                broken.extend(i for i in over if i not in broken)
            continue
        if size(cn, c.batch) >= now:
            continue
        text = gen.render(cn, "m", 0)
        if text not in seen:
            seen.add(text)
            yield c, cn


def shrink(fails, case, budget):
    """The smallest Case found that fails(nodes, batch) still, greedily,
    and the checks it took (at most budget)."""
    nodes, drawn = case.build()
    tries = 0
    improved = True
    while improved and tries < budget:
        improved = False
        for c, cn in smaller_cases(case, nodes, drawn):
            tries += 1
            if fails(cn, c.batch):
                case, improved = c, True
                nodes, drawn = case.build()
                break
            if tries >= budget:
                break
    return case, nodes, tries


def one(tools, seed, root, do_gc, budget):
    wd = os.path.join(root, f"s{seed}")
    nodes = gen.generate(seed, families=tools.families)
    t0 = time.time()
    r = check(tools, nodes, seed, wd, do_gc)
    res = {"seed": seed, "ops": sum(n.kind == "op" for n in nodes),
           "gc": do_gc and gradcheckable(nodes), "secs": 0.0, "fail": None,
           "half": gen.half_weights(nodes, seed),
           "nochecks": gen.no_checks(seed), "wide": gen.wide_range(nodes, seed),
           "train": any(n.kind == "param" for n in nodes)
           and gen.train_spec(seed, tools.families) is not None}
    res["obj"] = res["train"] and bool(gen.objectives_spec(seed, nodes))
    if r is not None:
        kind, log = r
        case, small, tries = Case(seed), nodes, 0
        if not kind.startswith(("harness", "gc-harness", "train-harness",
                                "objectives-harness")):
            def fails(c, batch):
                r = check(tools, c, seed, wd + "-shrink", do_gc, batch)
                return r is not None and r[0] == kind
            case, small, tries = shrink(fails, case, budget)
        r2 = check(tools, small, seed, wd + "-shrink", do_gc, case.batch)
        text = gen.render(small, "difftest", seed,
                          settings(small, seed, do_gc and gradcheckable(small), case.batch))
        mo = os.path.join(wd + "-shrink", "mo.dl")
        if "objectives" in kind and os.path.exists(mo):
            with open(mo) as f:
                text = f.read()  # the model with its objectives
        res["fail"] = {"kind": kind, "log": (r2[1] if r2 else log)[-3000:], "model": text,
                       "ops": sum(n.kind == "op" for n in small), "tries": tries,
                       "full": gen.render(nodes, "difftest", seed, settings(nodes, seed, False))}
    else:
        shutil.rmtree(wd, ignore_errors=True)
    res["secs"] = time.time() - t0
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--param", action="append", default=[], help="KEY=VALUE, lit's params")
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--count", type=int, default=10, help="models to try")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--families", help="draw statements of these families only, comma-separated: "
                    + ", ".join(gen.FAMILIES + ("train",)) + " (train: every model with "
                    "parameters takes optimizer steps)")
    ap.add_argument("--no-gradcheck", action="store_true")
    ap.add_argument("--shrink-budget", type=int, default=60, help="checks per shrink")
    ap.add_argument("--keep", help="folder for the models' files (default: a temporary one)")
    ap.add_argument("--expect-clean", action="store_true", help="exit 1 when a model fails")
    ap.add_argument("--plant-fault", action="store_true",
                    help="compile every model with its last output off by 0.1%% (a self-test)")
    ap.add_argument("--plant-train-fault", action="store_true",
                    help="the training check's reference rate off by 0.1%% (a self-test)")
    ap.add_argument("--plant-objectives-fault", action="store_true",
                    help="the several-objectives check's reference rates off by 0.1%% (a self-test)")
    ap.add_argument("--plant-nochecks-fault", action="store_true",
                    help="compile the --no-checks models with their last output off by 0.1%% "
                    "(a self-test)")
    ap.add_argument("--print", dest="show", type=int, help="print the model of one seed and stop")
    a = ap.parse_args()
    try:
        FAMILIES[0] = gen.parse_families(a.families)
    except ValueError as e:
        ap.error(f"--families: {e}")
    if a.show is not None:
        sys.stdout.write(gen.render(gen.generate(a.show, families=FAMILIES[0]), "difftest",
                                    a.show, []))
        return 0
    params = []
    for p in a.param:
        if "=" not in p:
            ap.error(f"--param {p}: expected KEY=VALUE")
        params.append(tuple(p.split("=", 1)))
    if "dlc" not in dict(params) or "source_dir" not in dict(params):
        ap.error("the params dlc= and source_dir= are needed (build/DIR/difftest.sh passes them)")
    tools = Tools(params)
    tools.fault = a.plant_fault
    tools.train_fault = a.plant_train_fault
    tools.obj_fault = a.plant_objectives_fault
    tools.nochecks_fault = a.plant_nochecks_fault
    tools.families = FAMILIES[0]
    root = os.path.abspath(a.keep) if a.keep else tempfile.mkdtemp(prefix="difftest.")
    os.makedirs(root, exist_ok=True)
    tools.prepare(root)
    t0 = time.time()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as ex:
        futs = [ex.submit(one, tools, s, root, not a.no_gradcheck, a.shrink_budget)
                for s in range(a.seed, a.seed + a.count)]
        for f in futs:
            res = f.result()
            results.append(res)
            tag = "FAIL " + res["fail"]["kind"] if res["fail"] else "ok"
            print(f"seed {res['seed']}: {res['ops']} ops{' +grad' if res['gc'] else ''}"
                  f"{' +train' if res['train'] else ''}{' +obj' if res['obj'] else ''}"
                  f"{' +' + res['half'] if res['half'] else ''}"
                  f"{' +nochecks' if res['nochecks'] else ''}"
                  f"{' +wide' + str(res['wide']) if res['wide'] else ''}: {tag}"
                  f" ({res['secs']:.1f} s)", flush=True)
            if res["fail"]:
                fl = res["fail"]
                fams = f" (--families {','.join(a.families and FAMILIES[0])})" if a.families else ""
                print(f"--- seed {res['seed']}{fams}: {fl['kind']}, shrunk to {fl['ops']} ops in "
                      f"{fl['tries']} tries; reproducer:")
                print(fl["model"], end="")
                print("--- its output (tail):")
                print("\n".join(fl["log"].strip().splitlines()[-15:]))
                print("---", flush=True)
    fails = [r for r in results if r["fail"]]
    grads = sum(r["gc"] for r in results)
    trains = sum(r["train"] for r in results)
    halves = sum(bool(r["half"]) for r in results)
    objs = sum(r["obj"] for r in results)
    nochecks = sum(r["nochecks"] for r in results)
    wides = sum(bool(r["wide"]) for r in results)
    print(f"difftest: {len(results)} models tried (seeds {a.seed}..{a.seed + a.count - 1}), "
          f"{len(results) - len(fails)} agreed, {grads} with gradient checks, "
          f"{trains} with training steps ({objs} with several objectives), "
          f"{halves} with half weights, {nochecks} also with --no-checks, "
          f"{wides} with wide inputs, "
          f"{len(fails)} failures shrunk, {time.time() - t0:.0f} s")
    kinds = {}
    for r in fails:
        kinds.setdefault(r["fail"]["kind"], []).append(r["seed"])
    for k, v in sorted(kinds.items()):
        print(f"  {k}: seeds {' '.join(map(str, v))}")
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if fails and a.expect_clean else 0


if __name__ == "__main__":
    sys.exit(main())
