#!/usr/bin/env python3
"""Prints the public API of a crate from its rustdoc JSON (format version 57), one item per
line, sorted: every public module, re-export, type, field, variant, function, method, trait,
trait implementation, constant and static reachable from the crate root. Used by
scripts/public-api.sh; stdlib only."""

import json
import sys

FORMAT_VERSION = 57


def main(path):
    doc = json.load(open(path, encoding="utf-8"))
    if doc["format_version"] != FORMAT_VERSION:
        sys.exit(f"public_api.py reads rustdoc JSON format {FORMAT_VERSION}, got "
                 f"{doc['format_version']}: update it with the toolchain")
    index = doc["index"]
    item = lambda id_: index.get(str(id_))
    lines = set()

    def ty(t):
        if t is None:
            return "()"
        (kind, v), = t.items()
        if kind == "resolved_path":
            return v["path"] + args(v.get("args"))
        if kind == "primitive" or kind == "generic":
            return v
        if kind == "borrowed_ref":
            life = (v["lifetime"] + " ") if v.get("lifetime") else ""
            return "&" + life + ("mut " if v["is_mutable"] else "") + ty(v["type"])
        if kind == "tuple":
            return "(" + ", ".join(ty(x) for x in v) + ")"
        if kind == "slice":
            return "[" + ty(v) + "]"
        if kind == "array":
            return "[" + ty(v["type"]) + "; " + v["len"] + "]"
        if kind == "impl_trait":
            return "impl " + " + ".join(bound(b) for b in v)
        if kind == "dyn_trait":
            return "dyn " + " + ".join(
                p["trait"]["path"] + args(p["trait"].get("args")) for p in v["traits"])
        if kind == "raw_pointer":
            return ("*mut " if v["is_mutable"] else "*const ") + ty(v["type"])
        if kind == "qualified_path":
            trait = v.get("trait")
            self_ty = ty(v["self_type"])
            return (f"<{self_ty} as {trait['path']}>" if trait else self_ty) + "::" + v["name"]
        if kind == "function_pointer":
            sig = v["sig"]
            return "fn(" + ", ".join(ty(t) for _, t in sig["inputs"]) + ") -> " + ty(sig["output"])
        return kind

    def args(a):
        if not a:
            return ""
        (kind, v), = a.items()
        if kind == "angle_bracketed":
            parts = []
            for arg in v["args"]:
                (k, x), = arg.items()
                parts.append(ty(x) if k == "type" else str(x))
            for c in v.get("constraints", []):
                binding = c["binding"]
                if "equality" in binding:
                    parts.append(c["name"] + " = " + ty(binding["equality"].get("type")))
                else:
                    parts.append(c["name"] + ": " + " + ".join(bound(b) for b in binding["constraint"]))
            return "<" + ", ".join(parts) + ">" if parts else ""
        if kind == "parenthesized":
            return "(" + ", ".join(ty(x) for x in v["inputs"]) + ") -> " + ty(v.get("output"))
        return ""

    def bound(b):
        if "trait_bound" in b:
            t = b["trait_bound"]["trait"]
            return t["path"] + args(t.get("args"))
        if "outlives" in b:
            return b["outlives"]
        return "?"

    def generics(g):
        params = []
        for p in g.get("params", []):
            kind = p["kind"]
            if "type" in kind:
                bounds = kind["type"].get("bounds", [])
                if kind["type"].get("is_synthetic"):
                    continue
                params.append(p["name"] + (": " + " + ".join(bound(b) for b in bounds) if bounds else ""))
            elif "lifetime" in kind:
                params.append(p["name"])
            elif "const" in kind:
                params.append("const " + p["name"] + ": " + ty(kind["const"]["type"]))
        return "<" + ", ".join(params) + ">" if params else ""

    def fn(name, f):
        header = f["header"]
        prefix = ("const " if header["is_const"] else "") + ("async " if header["is_async"] else "") \
            + ("unsafe " if header["is_unsafe"] else "")
        selfs = {"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}
        inputs = ", ".join(
            selfs.get(ty(t), f"self: {ty(t)}") if n == "self" else f"{n}: {ty(t)}"
            for n, t in f["sig"]["inputs"])
        out = f["sig"]["output"]
        return f"{prefix}fn {name}{generics(f['generics'])}({inputs})" + (f" -> {ty(out)}" if out else "")

    def impls(path, ids):
        for id_ in ids:
            it = item(id_)
            if it is None:
                continue
            imp = it["inner"]["impl"]
            if imp.get("is_synthetic") or imp.get("blanket_impl"):
                continue
            if imp.get("trait"):
                trait = imp["trait"]
                if trait["path"] == "StructuralPartialEq":
                    continue
                lines.add(f"impl{generics(imp['generics'])} {trait['path']}{args(trait.get('args'))} for {ty(imp['for'])}")
                continue
            for mid in imp["items"]:
                m = item(mid)
                if m is None or m["visibility"] != "public":
                    continue
                (kind, v), = m["inner"].items()
                if kind == "function":
                    lines.add(f"{path}::{fn(m['name'], v)}")
                elif kind == "assoc_const":
                    lines.add(f"{path}::const {m['name']}: {ty(v['type'])}")

    def walk(path, id_, seen, name=None):
        it = item(id_)
        if it is None or id_ in seen:
            return
        seen = seen | {id_}
        (kind, v), = it["inner"].items()
        name = name or it.get("name")
        here = f"{path}::{name}" if name else path
        if kind == "module":
            if not v.get("is_crate"):
                lines.add(f"pub mod {here}")
            for child in v["items"]:
                c = item(child)
                if c is not None and c["visibility"] == "public":
                    walk(here if not v.get("is_crate") else path, child, seen)
        elif kind == "use":
            target = item(v["id"]) if v.get("id") is not None else None
            if target is None:
                # Another crate's item: the re-export itself is the API.
                if v["is_glob"]:
                    lines.add(f"pub use {path}::{{{v['source']}::*}}")
                else:
                    lines.add(f"pub use {path}::{{{v['source']} as {v['name']}}}")
            elif v["is_glob"]:
                for child in target["inner"]["module"]["items"]:
                    c = item(child)
                    if c is not None and c["visibility"] == "public":
                        walk(path, child, seen)
            else:
                walk(path, v["id"], seen, v["name"])
        elif kind == "struct":
            lines.add(f"pub struct {here}{generics(v['generics'])}")
            k = v["kind"]
            if isinstance(k, dict) and "plain" in k:
                for fid in k["plain"]["fields"]:
                    f = item(fid)
                    if f is not None and f["visibility"] == "public":
                        lines.add(f"pub {here}::{f['name']}: {ty(f['inner']['struct_field'])}")
            elif isinstance(k, dict) and "tuple" in k:
                for i, fid in enumerate(k["tuple"]):
                    f = item(fid) if fid is not None else None
                    if f is not None and f["visibility"] == "public":
                        lines.add(f"pub {here}::{i}: {ty(f['inner']['struct_field'])}")
            impls(here, v["impls"])
        elif kind == "enum":
            attrs = " ".join(str(a) for a in it.get("attrs", []))
            lines.add(f"pub enum {here}{generics(v['generics'])}" + (" #[non_exhaustive]" if "non_exhaustive" in attrs else ""))
            for vid in v["variants"]:
                var = item(vid)
                if var is not None:
                    lines.add(f"pub {here}::{var['name']}")
            impls(here, v["impls"])
        elif kind == "function":
            lines.add(f"pub {path}::{fn(name, v)}")
        elif kind == "trait":
            lines.add(f"pub trait {here}{generics(v['generics'])}")
            for mid in v["items"]:
                m = item(mid)
                if m is not None:
                    (mk, mv), = m["inner"].items()
                    lines.add(f"{here}::{fn(m['name'], mv)}" if mk == "function" else f"{here}::{mk} {m['name']}")
        elif kind == "constant":
            lines.add(f"pub const {here}: {ty(v['type'])}")
        elif kind == "static":
            lines.add(f"pub static {here}: {ty(v['type'])}")
        elif kind == "type_alias":
            lines.add(f"pub type {here}{generics(v['generics'])} = {ty(v['type'])}")
        elif kind in ("macro", "proc_macro"):
            lines.add(f"pub macro {here}!")
        else:
            lines.add(f"pub {kind} {here}")

    root = item(doc["root"])
    walk(root["name"], doc["root"], frozenset())
    print("\n".join(sorted(lines)))


if __name__ == "__main__":
    main(sys.argv[1])
