"""Honour the ``fuse`` pass's plan in TVM: each fusion group is compiled as one fused function.

The plan is the node metadata ``deploycc.fusion.group`` the pass writes (see ``passes/fuse.py``).
TVM's public ``from_onnx`` drops the ONNX-value -> Relax-expression table, so this module drives
TVM 0.27's importer class (``ONNXGraphImporter``) itself and keeps the table. For each group it
takes the Relax bindings between the group's inputs and its output (a backward slice), moves
them into a Relax function with the ``Primitive`` attribute whose parameters are the group's
inputs and its weights (FuseTIR does not accept constants inside), and calls it from ``main``:
the same shape ``relax.transform.FuseOps`` gives its own groups. ``LegalizeOps`` then ``FuseTIR``
turn every such function into one PrimFunc named ``deploycc_<group id>`` (groups that are
identical once their weights are parameters share one); the rest of the module
stays as it was (the default CPU pipeline of TVM 0.27 does no fusion of its own).

On CPU targets the default rules schedule each fused PrimFunc band by band
(``fused_chain.FusedChain``: intermediates kept inside a band of output rows). With
``[tvm] fusion_tiling = true`` in the target, each fused PrimFunc is instead split tile by tile
at the plan's tile size here (``_tile``), unvectorized; off by default (bench/bench_passes.py,
bench/bench_fusion.py print the figures).

``build`` runs the same Relax pipeline ``tvm.compile`` would, checks that every planned group is
one PrimFunc in the lowered module, and compiles without re-running the pipeline. A group that
cannot be honoured is an error, never a silent fallback; the one exception is said in the build
report: on CPU targets a group whose band ``fused_chain`` cannot keep on chip (``oversized``) is
compiled unfused, with its reason in ``fusion.split``. Models without a plan take the plain
``from_onnx`` / ``tvm.compile`` path unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx

from deploycc.core.errors import UserError

GROUP_KEY, TILE_KEY = "deploycc.fusion.group", "deploycc.fusion.tile"


@dataclass
class Group:
    id: str
    nodes: list[str]
    inputs: list[str]  # ONNX values read from outside the group (activations and weights)
    output: str
    tile: tuple[int, ...] | None = None  # (rows, columns) from the plan's HxW
    function: str = ""  # the Relax/TIR function compiled for it (identical groups share one)


@dataclass
class Fusion:
    groups: list[Group] = field(default_factory=list)
    primfuncs: dict[str, int] = field(default_factory=dict)  # group id -> compute blocks in its PrimFunc
    tiled: dict[str, int] = field(default_factory=dict)  # function -> blocks moved into the tile loop
    split: dict[str, str] = field(default_factory=dict)  # group id -> why it was left unfused

    def summary(self) -> dict:
        return {
            "groups_planned": len(self.groups),
            "groups_fused": len(self.primfuncs),
            "primfuncs": {g.function: self.primfuncs[g.id] for g in self.groups if g.id in self.primfuncs},
            "function_of_group": {g.id: g.function for g in self.groups},
            "tiled": {g.function: list(g.tile) for g in self.groups if g.function in self.tiled and g.tile},
            "split": dict(self.split),
        }


def read_groups(model: onnx.ModelProto) -> list[Group]:
    """The fusion groups recorded in ``model``'s node metadata, in graph order."""
    members: dict[str, list[onnx.NodeProto]] = {}
    tiles: dict[str, str | None] = {}
    for node in model.graph.node:
        gid = next((p.value for p in node.metadata_props if p.key == GROUP_KEY), None)
        if gid is not None:
            members.setdefault(gid, []).append(node)
            tiles[gid] = next((p.value for p in node.metadata_props if p.key == TILE_KEY), None)
    groups = []
    for gid, nodes in members.items():
        produced = {o for n in nodes for o in n.output}
        inputs = list(dict.fromkeys(i for n in nodes for i in n.input if i and i not in produced))
        tile_text = tiles.get(gid)
        tile = tuple(int(t) for t in tile_text.split("x")) if tile_text else None
        groups.append(Group(gid, [n.name for n in nodes], inputs, nodes[-1].output[0], tile))
    return groups


def import_onnx(model: onnx.ModelProto, tiling: bool = False, onchip_bytes: int | None = None):
    """(Relax module, Fusion): the plan's groups already moved into fused PrimFuncs; with
    ``tiling``, each fused PrimFunc is also scheduled tile by tile at the plan's tile size. With
    ``onchip_bytes`` (CPU targets), a group whose band the CPU schedule cannot keep on chip is
    left unfused, its reason in ``Fusion.split`` (the build report's ``fusion.split``)."""
    from tvm.relax.frontend.onnx import from_onnx

    groups, split = _honourable(model, read_groups(model), onchip_bytes)
    if not groups:
        return from_onnx(model, keep_params_in_input=False), Fusion(split=split)
    from tvm import relax, transform

    table, mod = _import_keeping_table(model)
    mod = _partition(mod, table, groups)
    mod = transform.Sequential([relax.transform.LegalizeOps(), relax.transform.FuseTIR()])(mod)
    fusion = Fusion(groups, split=split)
    if tiling:
        mod = _tile(mod, groups, fusion)
    return mod, fusion


def _honourable(model: onnx.ModelProto, groups: list[Group], onchip_bytes: int | None):
    """(groups to fuse, {group id: why not}) under ``fused_chain``'s band limit."""
    if not groups or not onchip_bytes:
        return groups, {}
    from .fused_chain import oversized

    shaped = onnx.shape_inference.infer_shapes(model)
    split = oversized(shaped, [(g.id, g.nodes, g.output) for g in groups], onchip_bytes)
    return [g for g in groups if g.id not in split], split


def build(mod, tvm_target, fusion: Fusion, pipeline=None):
    """``tvm.compile`` for ``mod`` with ``pipeline`` (TVM's default when None); with a plan, lower
    first and check every group is one PrimFunc."""
    import tvm
    from tvm import relax

    if not fusion.groups:
        return tvm.compile(mod, target=tvm_target, relax_pipeline=pipeline or "default")
    if pipeline is None:
        gpu = "gpu" in tvm_target.keys
        pipeline = relax.get_default_pipeline(tvm_target) if gpu else relax.get_pipeline("default")
    # blocks are counted before scheduling (a schedule may inline a group's elementwise blocks)
    planned = _fused_primfuncs(mod, fusion.groups)
    with tvm_target:
        lowered = pipeline(mod)
    _fused_primfuncs(lowered, fusion.groups)
    fusion.primfuncs = planned
    return tvm.compile(lowered, target=tvm_target, relax_pipeline=None)


def _tile(mod, groups: list[Group], fusion: Fusion):
    """Schedule each fused PrimFunc as the plan says: split the output's H and W loops by the tile
    size and compute every producer block at the tile loop (TVM infers each block's halo region,
    and buffer compaction then shrinks the intermediates to one tile's extent). Schedule
    primitives only apply where they are valid, so numerics are unchanged; a block that cannot
    move stays whole before the tile loop."""
    import tvm
    from tvm import s_tir

    done = {}
    for g in groups:
        if g.function in done or not g.tile:
            continue
        gv = mod.get_global_var(g.function)
        sch = s_tir.Schedule(mod[gv])
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
        loops = sch.get_loops(blocks[-1])
        if len(loops) < 4:
            continue
        n, c, h, w = loops[:4]
        ho, hi = sch.split(h, [None, g.tile[0]])
        wo, wi = sch.split(w, [None, g.tile[1]])
        sch.reorder(n, ho, wo, c, hi, wi)
        moved = 0
        for b in reversed(blocks[:-1]):
            try:
                sch.compute_at(b, wo, preserve_unit_loops=True)
                moved += 1
            except (s_tir.ScheduleError, tvm.TVMError):
                pass
        mod[gv] = sch.mod["main"].with_attrs({k: mod[gv].attrs[k] for k in mod[gv].attrs.keys()})
        done[g.function] = moved
    fusion.tiled = done
    return mod


def _import_keeping_table(model: onnx.ModelProto):
    try:
        from tvm.relax.frontend.onnx.onnx_frontend import ONNXGraphImporter

        importer = ONNXGraphImporter({}, "float32", keep_params_in_input=False, sanitize=True)
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        mod = importer.from_onnx(model.graph, opset)
        return importer._nodes, mod
    except (ImportError, AttributeError, TypeError) as exc:
        import tvm

        raise UserError(
            f"TVM {tvm.__version__}: cannot map ONNX values to Relax to honour the fusion plan "
            f"({exc}); build without the fuse pass (--passes without fuse)"
        ) from None


def _partition(mod, table: dict, groups: list[Group]):
    from tvm import relax

    fn = mod["main"]
    if len(fn.body.blocks) != 1 or not isinstance(fn.body.blocks[0], relax.DataflowBlock):
        raise UserError(
            "fusion plan: the imported model is not one dataflow block (control flow); build without the fuse pass"
        )
    bindings = list(fn.body.blocks[0].bindings)
    var_of = {b.value: b.var for b in bindings}
    index = {b.var: i for i, b in enumerate(bindings)}
    users = _users(bindings)
    regions = [_region(g, table, var_of, index, bindings, users) for g in groups]
    bb = relax.BlockBuilder()
    calls = {}
    for g, (region, out_var, params) in zip(groups, regions):
        gv = _emit_group(bb, g, bindings, region, out_var, params)
        g.function = gv.name_hint
        calls[out_var] = (gv, params)
    in_group = set().union(*(r for r, _, _ in regions))
    attrs = {k: fn.attrs[k] for k in fn.attrs.keys()} if fn.attrs else {}
    with bb.function("main", list(fn.params), attrs=attrs):
        with bb.dataflow():
            vmap: dict = {}
            for b in bindings:
                if b.var in calls:
                    gv, params = calls[b.var]
                    value = relax.Call(gv, [vmap.get(p, p) for p in params])
                elif b.var in in_group:
                    continue
                else:
                    value = _rename(b.value, vmap)
                dataflow = isinstance(b.var, relax.DataflowVar)
                vmap[b.var] = bb.emit(value) if dataflow else bb.emit_output(value)
        bb.emit_func_output(vmap.get(fn.body.body, fn.body.body))
    return bb.get()


def _region(g: Group, table, var_of, index, bindings, users):
    """(bindings of the group, its output var, its parameters: input vars then weight constants)."""
    from tvm import relax

    def var(name: str):
        expr = table.get(name)
        return expr if isinstance(expr, relax.Var) else var_of.get(expr)

    out_var = var(g.output)
    if out_var is None or out_var not in index:
        raise UserError(f"fusion group {g.id}: output {g.output!r} has no Relax binding")
    boundary = {v for v in (var(n) for n in g.inputs) if v is not None}
    region, stack = set(), [out_var]
    while stack:
        v = stack.pop()
        if v in boundary or v not in index or v in region:
            continue
        region.add(v)
        stack.extend(relax.analysis.free_vars(bindings[index[v]].value))
    for v in region - {out_var}:
        if not users.get(v, set()) <= region:
            raise UserError(f"fusion group {g.id}: an intermediate Relax value is used outside the group")
    ordered = sorted(region, key=index.get)
    inputs = [
        v
        for v in dict.fromkeys(u for r in ordered for u in relax.analysis.free_vars(bindings[index[r]].value))
        if v not in region
    ]
    return region, out_var, inputs + _constants([bindings[index[r]].value for r in ordered])


def _emit_group(bb, g: Group, bindings, region, out_var, params):
    from tvm import relax

    fresh = [relax.Var(f"p{i}", p.ty) for i, p in enumerate(params)]
    name = f"deploycc_{g.id}"
    local = relax.BlockBuilder()
    with local.function(name, fresh, attrs={"Primitive": True}, private=True):
        with local.dataflow():
            vmap = dict(zip(params, fresh))
            for b in bindings:
                if b.var in region:
                    value = _rename(b.value, vmap)
                    vmap[b.var] = local.emit_output(value) if b.var.same_as(out_var) else local.emit(value)
        local.emit_func_output(vmap[out_var])
    # add_func reuses an identical function already added (a repeated unit with its weights lifted
    # to parameters), so identical groups share one compiled PrimFunc
    return bb.add_func(local.get()[name], name)


def _users(bindings) -> dict:
    from tvm import relax

    users: dict = {}
    for b in bindings:
        for v in relax.analysis.free_vars(b.value):
            users.setdefault(v, set()).add(b.var)
    return users


def _rename(expr, vmap: dict):
    from tvm import relax

    @relax.expr_functor.mutator
    class Rename(relax.PyExprMutator):
        def visit_var_(self, v):
            return vmap.get(v, v)

        def visit_dataflow_var_(self, v):
            return vmap.get(v, v)

        def visit_generic_const_(self, c):
            return vmap.get(c, c)

    return Rename().visit_expr(expr)


def _constants(exprs) -> list:
    from tvm import relax

    @relax.expr_functor.visitor
    class Constants(relax.PyExprVisitor):
        def __init__(self):
            super().__init__()
            self.found = []

        def visit_generic_const_(self, c):
            if not any(c.same_as(o) for o in self.found):
                self.found.append(c)

    v = Constants()
    for e in exprs:
        v.visit_expr(e)
    return v.found


def _fused_primfuncs(lowered, groups: list[Group]) -> dict[str, int]:
    """Group id -> compute blocks of its PrimFunc; an error if a group is not one PrimFunc."""
    import tvm

    funcs = {gv.name_hint: f for gv, f in lowered.functions.items()}
    out = {}
    for g in groups:
        f = funcs.get(g.function)
        if f is None or not isinstance(f, tvm.tirx.PrimFunc):
            raise UserError(
                f"fusion group {g.id} was not compiled as one fused function "
                f"(no PrimFunc {g.function or 'deploycc_' + g.id} after lowering)"
            )
        out[g.id] = _count_blocks(f)
    return out


def _count_blocks(func) -> int:
    """Compute blocks in a PrimFunc (TVM 0.27 has no Python TIR visitor; its script is stable)."""
    text = func.script()
    return (
        text.count("T.sblock(")
        + text.count("T.block(")
        - text.count('T.sblock("root")')
        - text.count('T.block("root")')
    )
