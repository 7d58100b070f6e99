"""The compressed model on disk: ``model.json`` (graph of standard layers) + ``model.safetensors`` (weights).

Loading builds a ``torch.fx.GraphModule`` from an allow-list of ``torch.nn`` layers and functions: no prunex
gated class, no pickle. Anything outside the allow-list is refused at save time with the name of the node.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import fx, nn

from prunex.artifacts import layout as files
from prunex.artifacts.errors import InputError

FORMAT, VERSION = "prunex.compressed", 1

MODULES: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "Conv2d": (
        nn.Conv2d,
        ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "padding_mode"),
    ),
    "Linear": (nn.Linear, ("in_features", "out_features")),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "ReLU": (nn.ReLU, ()),
    "ReLU6": (nn.ReLU6, ()),
    "Identity": (nn.Identity, ()),
    "Dropout": (nn.Dropout, ("p",)),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ("output_size",)),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode")),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
}
FUNCTIONS = {
    f"{getattr(f, '__module__', None) or 'torch'}.{f.__name__}": f
    for f in (
        operator.add,
        operator.mul,
        operator.truediv,
        operator.sub,
        operator.getitem,
        torch.cat,
        torch.flatten,
        torch.matmul,
        torch.index_select,
        torch.narrow,
        torch.zeros_like,
        torch.relu,
        torch.add,
        torch.mul,
        nn.functional.relu,
        nn.functional.adaptive_avg_pool2d,
        nn.functional.avg_pool2d,
        nn.functional.max_pool2d,
    )
}
FUNCTIONS = {k.replace("_operator.", "operator."): v for k, v in FUNCTIONS.items()}
METHODS = {
    *("repeat", "flatten", "unflatten", "unsqueeze", "mean", "view", "reshape", "relu", "narrow", "contiguous"),
    *("add", "mul", "size"),
}


class SerializationError(InputError):
    """A compressed model that cannot be written or read in the allow-listed format."""


def _function_name(fn) -> str:
    for name, f in FUNCTIONS.items():
        if f is fn:
            return name
    raise SerializationError(f"function {fn!r} is not in the compressed-model allow-list")


def _encode(arg) -> Any:
    if isinstance(arg, fx.Node):
        return {"node": arg.name}
    if isinstance(arg, tuple):
        return {"tuple": [_encode(a) for a in arg]}
    if isinstance(arg, list):
        return {"list": [_encode(a) for a in arg]}
    if isinstance(arg, slice):
        return {"slice": [arg.start, arg.stop, arg.step]}
    if isinstance(arg, dict):
        return {"dict": {k: _encode(v) for k, v in arg.items()}}
    if arg is None or isinstance(arg, (bool, int, float, str)):
        return arg
    raise SerializationError(f"argument {arg!r} of type {type(arg).__name__} cannot be stored")


def _decode(obj, nodes: dict[str, fx.Node]):
    if isinstance(obj, dict):
        if "node" in obj:
            return nodes[obj["node"]]
        if "tuple" in obj:
            return tuple(_decode(a, nodes) for a in obj["tuple"])
        if "list" in obj:
            return [_decode(a, nodes) for a in obj["list"]]
        if "slice" in obj:
            return slice(*obj["slice"])
        if "dict" in obj:
            return {k: _decode(v, nodes) for k, v in obj["dict"].items()}
        raise SerializationError(f"unknown encoded argument {obj}")
    return obj


def _module_spec(name: str, module: nn.Module) -> dict[str, Any]:
    kind = type(module).__name__
    if kind not in MODULES or MODULES[kind][0] is not type(module):
        raise SerializationError(f"layer {name} is a {kind}, which is not in the compressed-model allow-list")
    _, fields = MODULES[kind]
    args = {f: getattr(module, f) for f in fields}
    if kind in ("Conv2d", "Linear"):
        args["bias"] = module.bias is not None
    return {"type": kind, "args": {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}}


def save_compressed(gm: fx.GraphModule, directory: str | Path, metadata: dict[str, Any]) -> None:
    """Write ``model.json`` and ``model.safetensors`` into ``directory``."""
    directory = Path(directory)
    graph, modules, constants = [], {}, {}
    for node in gm.graph.nodes:
        entry: dict[str, Any] = {"name": node.name, "op": node.op}
        if node.op == "call_module":
            modules.setdefault(node.target, _module_spec(node.target, gm.get_submodule(node.target)))
            entry["target"] = node.target
        elif node.op == "call_function":
            entry["target"] = _function_name(node.target)
        elif node.op == "call_method":
            if node.target not in METHODS:
                raise SerializationError(f"method {node.target!r} is not in the compressed-model allow-list")
            entry["target"] = node.target
        elif node.op == "get_attr":
            constants[node.target] = getattr_path(gm, node.target)
            entry["target"] = node.target
        else:
            entry["target"] = node.target
        entry["args"] = _encode(tuple(node.args))
        entry["kwargs"] = _encode(dict(node.kwargs))
        graph.append(entry)
    tensors = {k: v.detach().contiguous().cpu() for k, v in gm.state_dict().items()}
    tensors.update({f"constant:{k}": v.detach().contiguous().cpu() for k, v in constants.items() if k not in tensors})
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / files.MODEL_WEIGHTS))
    spec = {"format": FORMAT, "version": VERSION, **metadata, "modules": modules, "graph": graph}
    (directory / files.MODEL_SPEC).write_text(json.dumps(spec, indent=1) + "\n")


def getattr_path(root: nn.Module, path: str):
    obj = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def load_compressed(directory: str | Path) -> fx.GraphModule:
    """Rebuild the compressed network (eval mode) from ``directory``; needs only torch and safetensors."""
    directory = Path(directory)
    spec_path, weights_path = directory / files.MODEL_SPEC, directory / files.MODEL_WEIGHTS
    if not spec_path.is_file() or not weights_path.is_file():
        raise SerializationError(f"{directory} is not a compressed model (needs model.json and model.safetensors)")
    try:
        return _load(spec_path, weights_path)
    except SerializationError:
        raise
    except Exception as err:  # a damaged file fails in many ways (JSON, safetensors, shapes); all mean the same
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SerializationError(f"{directory}: damaged compressed model ({type(err).__name__}: {reason})") from err


def _read_spec(spec_path: Path) -> dict[str, Any]:
    try:
        spec = json.loads(spec_path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise SerializationError(f"{spec_path}: not valid JSON ({err})") from None
    except OSError as err:
        raise SerializationError(f"{spec_path}: cannot be read ({err.strerror or err})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise SerializationError(f"{spec_path}: not a prunex compressed model")
    return spec


def _load(spec_path: Path, weights_path: Path) -> fx.GraphModule:
    spec = _read_spec(spec_path)
    for key, kind in (("modules", dict), ("graph", list)):
        if not isinstance(spec.get(key), kind):
            raise SerializationError(f"{spec_path}: no '{key}' {kind.__name__} (a damaged or hand-edited file?)")
    tensors = load_file(str(weights_path))
    root: dict[str, Any] = {}
    for target, m in spec["modules"].items():
        if m["type"] not in MODULES:
            raise SerializationError(f"{spec_path}: layer type {m['type']} is not allowed")
        cls = MODULES[m["type"]][0]
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in m["args"].items()}
        root[target] = cls(**args)
    graph, nodes = fx.Graph(), {}
    for entry in spec["graph"]:
        op, target = entry["op"], entry["target"]
        args, kwargs = _decode(entry["args"], nodes), _decode(entry["kwargs"], nodes)
        if op == "call_function":
            if target not in FUNCTIONS:
                raise SerializationError(f"{spec_path}: function {target} is not allowed")
            target = FUNCTIONS[target]
        elif op == "call_method" and target not in METHODS:
            raise SerializationError(f"{spec_path}: method {target} is not allowed")
        elif op == "get_attr":
            root[target] = tensors.get(f"constant:{target}", tensors.get(target))
        node = graph.create_node(op, target, args, kwargs, name=entry["name"])
        nodes[entry["name"]] = node
    gm = fx.GraphModule(root, graph)
    state = {k: v for k, v in tensors.items() if not k.startswith("constant:")}
    missing, unexpected = gm.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SerializationError(
            f"{weights_path}: weights do not fit the graph (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return gm.eval()


def _is_size(d: Any) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 16


def read_metadata(directory: str | Path) -> dict[str, Any]:
    """What ``model.json`` says about the model besides its graph (source, input shape, dataset, totals), checked:
    a field of the wrong type, or an ``input_shape`` that is not [N, C, H, W] of positive sizes, is a damaged file."""
    spec_path = Path(directory) / files.MODEL_SPEC
    spec = _read_spec(spec_path)
    meta = {k: v for k, v in spec.items() if k not in ("modules", "graph")}
    for key, kind in (("source", dict), ("dataset", (dict, type(None))), ("input_shape", list), ("totals", dict)):
        if key in meta and not isinstance(meta[key], kind):
            kind_name = type(meta[key]).__name__
            raise SerializationError(f"{spec_path}: '{key}' is a {kind_name} (a damaged or hand-edited file?)")
    shape = meta.get("input_shape")
    if shape is not None and not (
        len(shape) == 4 and (shape[0] is None or _is_size(shape[0])) and all(map(_is_size, shape[1:]))
    ):
        raise SerializationError(
            f"{spec_path}: 'input_shape' {shape!r} is not [N, C, H, W] of positive sizes (N may be null)"
        )
    return meta
