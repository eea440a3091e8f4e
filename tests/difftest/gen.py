"""Random valid .dl models from a seed (tests/difftest/README.md).

A model is a list of Nodes in definition order: inputs, params and op
statements, each with its type and shape known here, so every statement is
built valid by construction. Nodes refer to earlier ones by name; the
shrinker (difftest.py) edits the list and renders it again.
"""
import random

BATCH = "B"
MAX_BATCH = 5


class Node:
    __slots__ = ("name", "kind", "dtype", "shape", "expr", "args", "output", "gc_range")

    def __init__(self, name, kind, dtype, shape, expr="", args=(), output=False):
        self.name = name
        self.kind = kind  # "input", "param" or "op"
        self.dtype = dtype
        self.shape = list(shape)
        self.expr = expr  # with {0}, {1}, ... standing for args
        self.args = list(args)
        self.output = output
        self.gc_range = None  # i32 labels: "0,C-1"

    def copy(self):
        n = Node(self.name, self.kind, self.dtype, self.shape, self.expr, self.args, self.output)
        n.gc_range = self.gc_range
        return n


def dims_text(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def render(nodes, name, seed, settings=()):
    """The model's text; settings are extra comment lines (# EXEC: ...)."""
    out = [f"# difftest model, seed {seed}"]
    out += list(settings)
    out.append(f"model {name} {{")
    out.append(f"    batch {BATCH} <= {MAX_BATCH};")
    for n in nodes:
        if n.kind == "input":
            out.append(f"    input {n.name}: {n.dtype}{dims_text(n.shape)};")
        elif n.kind == "param":
            out.append(f"    param {n.name}: {n.dtype}{dims_text(n.shape)};")
        else:
            e = n.expr.format(*n.args)
            out.append(f"    {'output ' if n.output else ''}{n.name} = {e};")
    out.append("}")
    return "\n".join(out) + "\n"


def numel_fixed(shape):
    p = 1
    for d in shape:
        if d != BATCH:
            p *= d
    return p


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.seed = seed
        self.dtype = self.r.choice(["f32", "f64"])
        self.nodes = []
        self.count = 0

    def fresh(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def leaf(self, shape, kind=None, dtype=None):
        kind = kind or self.r.choice(["input", "param"])
        if BATCH in shape:
            kind = "input"  # parameters have no batch dimension
        n = Node(self.fresh("x" if kind == "input" else "w"), kind, dtype or self.dtype, shape)
        self.nodes.append(n)
        return n

    def op(self, expr, args, shape, dtype=None):
        n = Node(self.fresh("v"), "op", dtype or self.dtype, shape, expr, [a.name for a in args])
        self.nodes.append(n)
        return n

    def rand_shape(self):
        rank = self.r.choice([1, 2, 2, 2, 3, 3])
        shape = [self.r.choice([1, 2, 3, 4, 5]) for _ in range(rank)]
        if self.r.random() < 0.7:
            shape[0] = BATCH
        return shape

    def pick(self):
        """An existing float value, recent ones preferred (chains)."""
        vals = [n for n in self.nodes if n.dtype == self.dtype]
        if not vals or self.r.random() < 0.1:
            return self.leaf(self.rand_shape())
        if self.r.random() < 0.6:
            return vals[-1]
        return self.r.choice(vals)

    def bcast_partner(self, shape):
        """A shape that broadcasts with shape: dims set to 1, leading ones dropped."""
        s = [d if self.r.random() < 0.6 else 1 for d in shape]
        if len(s) > 1 and self.r.random() < 0.3:
            s = s[self.r.randint(1, len(s) - 1):]
        return s

    # one statement of each family; each returns the new node

    def g_unary(self, x):
        f = self.r.choice(["relu({0})", "sigmoid({0})", "tanh({0})", "-{0}", "abs({0})",
                           "square({0})", "softplus({0})", "silu({0})", "gelu({0})",
                           "elu({0})", "leaky_relu({0}, alpha = 0.2)", "exp(tanh({0}))",
                           "sqrt(square({0}) + 1)", "log(sigmoid({0}))",
                           "gelu({0}, approximate = \"tanh\")", "clamp({0}, -0.5, 0.5)"])
        return self.op(f, [x], x.shape)

    def g_binary(self, x):
        vals = [n for n in self.nodes if n.dtype == self.dtype and n is not x]
        other = None
        for c in self.r.sample(vals, len(vals)):
            if bcast(x.shape, c.shape) is not None and self.r.random() < 0.5:
                other = c
                break
        if other is None:
            other = self.leaf(self.bcast_partner(x.shape))
        f = self.r.choice(["{0} + {1}", "{0} - {1}", "{0} * {1}", "maximum({0}, {1})",
                           "minimum({0}, {1})", "{0} / (square({1}) + 1)", "{0} * 0.5 + {1}"])
        a, b = (x, other) if self.r.random() < 0.7 else (other, x)
        return self.op(f, [a, b], bcast(a.shape, b.shape))

    def g_matmul(self, x):
        r = self.r
        if x.shape == [BATCH]:
            x = self.op("reshape({0}, [B, 1])", [x], [BATCH, 1])
        elif len(x.shape) == 1:
            x = self.op("reshape({0}, [1, -1])", [x], [1] + x.shape)
        elif not x.shape:
            x = self.op("reshape({0}, [1, 1])", [x], [1, 1])
        k = x.shape[-1]
        kind = r.choice(["dense", "dense", "bb", "k1", "vec"])
        if kind == "bb" and x.shape == [BATCH, k]:
            # [B, k] @ [k, B] -> [B, B]
            y = self.leaf([k, BATCH], "input")
            return self.op("{0} @ {1}", [x, y], [BATCH, BATCH])
        if kind == "k1":
            # a K = 1 product: [..., n, 1] @ [1, m]
            s = self.op("sum({0}, axis = -1, keepdims = true)", [x], x.shape[:-1] + [1])
            m = r.choice([1, 3, 4])
            w = self.leaf([1, m], "param")
            return self.op("{0} @ {1}", [s, w], s.shape[:-1] + [m])
        if kind == "vec":
            w = self.leaf([k], "param")
            return self.op("{0} @ {1}", [x, w], x.shape[:-1])
        m = r.choice([1, 2, 3, 4, 6])
        w = self.leaf([k, m], "param")
        if r.random() < 0.6:
            b = self.leaf([m], "param")
            return self.op("{0} @ {1} + {2}", [x, w, b], x.shape[:-1] + [m])
        return self.op("{0} @ {1}", [x, w], x.shape[:-1] + [m])

    def g_reduce(self, x):
        r = self.r
        rank = len(x.shape)
        if rank == 0:
            return self.g_unary(x)
        f = r.choice(["sum", "mean", "max", "min", "var"])
        keep = r.random() < 0.4
        kd = ", keepdims = true" if keep else ""
        axes = sorted(r.sample(range(rank), r.randint(1, rank)))
        if r.random() < 0.15:
            axes = list(range(rank))
        red = [x.shape[a] for a in axes]
        if f == "var" and BATCH not in red and numel_fixed(red) == 1:
            f = "sum"  # var of one element is constant
        if f == "var" and BATCH in red:
            # one element (batch 1) would divide by n - 1 = 0
            kd += ", correction = 0"
        if axes == list(range(rank)) and r.random() < 0.5:
            return self.op(f"{f}({{0}}{kd})", [x], [1] * rank if keep else [])
        if len(axes) == 1:
            ax = axes[0] - rank if r.random() < 0.4 else axes[0]
            a_text = str(ax)
        else:
            a_text = "[" + ", ".join(str(a) for a in axes) + "]"
        shape = [1 if i in axes else d for i, d in enumerate(x.shape)] if keep else \
            [d for i, d in enumerate(x.shape) if i not in axes]
        return self.op(f"{f}({{0}}, axis = {a_text}{kd})", [x], shape)

    def g_shape(self, x):
        r = self.r
        kind = r.choice(["reshape", "transpose", "concat", "slice", "slice"])
        rank = len(x.shape)
        if kind == "reshape":
            lead = [BATCH] if x.shape and x.shape[0] == BATCH else []
            n = numel_fixed(x.shape)
            if lead and BATCH in x.shape[1:]:
                lead = []
            if BATCH in x.shape and not lead:
                return self.g_unary(x)
            fs = factor(r, n)
            shape = lead + fs
            text = list(shape)
            if r.random() < 0.4:
                text[len(lead) + r.randrange(len(fs))] = -1
            return self.op(f"reshape({{0}}, {dims_text(text)})", [x], shape)
        if kind == "transpose" and rank >= 2:
            perm = list(range(rank))
            r.shuffle(perm)
            return self.op(f"transpose({{0}}, {dims_text(perm)})", [x], [x.shape[p] for p in perm])
        if kind == "concat" and rank >= 1:
            ax = r.randrange(rank)
            if x.shape[ax] == BATCH:
                # along the batch dimension only the same tensor twice would fit
                ax = rank - 1
                if x.shape[ax] == BATCH:
                    return self.g_unary(x)
            s = list(x.shape)
            s[ax] = r.choice([1, 2, 3])
            y = self.leaf(s) if r.random() < 0.7 else x
            shape = list(x.shape)
            shape[ax] = x.shape[ax] + y.shape[ax]
            return self.op(f"concat([{{0}}, {{1}}], axis = {ax})", [x, y], shape)
        # slices: every dimension but the batch gets a pick, a range or all
        if rank == 0:
            return self.g_unary(x)
        idx, shape = [], []
        for d in x.shape:
            if d == BATCH:
                idx.append(":")
                shape.append(d)
                continue
            c = r.random()
            if c < 0.15 and len(x.shape) > 1:
                i = r.randrange(d)
                idx.append(str(i - d if r.random() < 0.5 else i))
            elif c < 0.6:
                lo = r.randrange(d)
                hi = r.randint(lo + 1, d)
                st = r.choice([1, 1, 2])
                idx.append(f"{lo}:{hi}" + (f":{st}" if st != 1 else ""))
                shape.append(len(range(lo, hi, st)))
            elif c < 0.75:
                idx.append("::-1")
                shape.append(d)
            else:
                idx.append(":")
                shape.append(d)
        return self.op("{0}[" + ", ".join(idx) + "]", [x], shape)

    def g_softmax(self, x):
        # over a size-1 axis the result is constant: no gradient to check
        axes = [i for i, d in enumerate(x.shape) if d != 1]
        if not axes:
            return self.g_unary(x)
        f = self.r.choice(["softmax", "log_softmax"])
        ax = self.r.choice(axes) - (len(x.shape) if self.r.random() < 0.5 else 0)
        return self.op(f"{f}({{0}}, axis = {ax})", [x], x.shape)

    def g_loss(self, x):
        r = self.r
        if len(x.shape) == 2 and x.shape[0] == BATCH and x.shape[1] != BATCH and r.random() < 0.5:
            lbl = self.leaf([BATCH], "input", "i32")
            lbl.gc_range = f"0,{x.shape[1] - 1}"
            red = r.choice(["mean", "sum"])
            return self.op(f"cross_entropy({{0}}, {{1}}, reduction = \"{red}\")", [x, lbl], [])
        t = self.leaf(x.shape, "input")
        f = r.choice(["mse", "l1_loss", "smooth_l1_loss"])
        red = r.choice(["mean", "sum"])
        return self.op(f"{f}({{0}}, {{1}}, reduction = \"{red}\")", [x, t], [])

    def model(self):
        r = self.r
        self.leaf(self.rand_shape(), "input")
        steps = r.randint(3, 9)
        fams = [self.g_unary, self.g_binary, self.g_matmul, self.g_matmul, self.g_reduce,
                self.g_shape, self.g_shape, self.g_softmax]
        for _ in range(steps):
            x = self.pick()
            r.choice(fams)(x)
        if r.random() < 0.3:
            x = self.pick()
            self.g_loss(x)
        ops = [n for n in self.nodes if n.kind == "op" and n.dtype == self.dtype]
        ops[-1].output = True
        for n in ops[:-1]:
            if r.random() < 0.3:
                n.output = True
        return prune(self.nodes)


def prune(nodes):
    """Only what the outputs need (inputs and params included): every
    parameter then has a gradient for the gradient check."""
    by = {n.name: n for n in nodes}
    need = set()
    stack = [n.name for n in nodes if n.output]
    while stack:
        k = stack.pop()
        if k not in need:
            need.add(k)
            stack.extend(by[k].args)
    return [n for n in nodes if n.name in need]


def bcast(a, b):
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return out[::-1]


def factor(r, n):
    """n as a product of 1 to 3 factors, size-1 factors allowed."""
    fs = []
    for _ in range(r.randint(0, 2)):
        divs = [d for d in range(1, n + 1) if n % d == 0]
        d = r.choice(divs)
        fs.append(d)
        n //= d
    fs.append(n)
    r.shuffle(fs)
    return fs


def generate(seed):
    return Gen(seed).model()
