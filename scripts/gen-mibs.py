#!/usr/bin/env python3
"""Writes resources/mibs/{HOST-RESOURCES-MIB,HOST-RESOURCES-TYPES,ENTITY-MIB,EtherLike-MIB,
SNMP-FRAMEWORK-MIB}.txt from pysnmp's compiled Python modules of them (Debian's
python3-pysnmp4-mibs, and python3-pysnmp4 for SNMP-FRAMEWORK-MIB).

Only the facts are carried over: names, OIDs, syntaxes (enumerations, ranges, sizes),
MAX-ACCESS, UNITS, INDEX/AUGMENTS, TEXTUAL-CONVENTIONs with their DISPLAY-HINT, the
objects of notifications, revision dates. Every DESCRIPTION is ours ("See RFC 2790."):
the compiled modules are executed with `loadTexts` description setters that discard
their argument, so no RFC prose reaches this script's output. Conformance groups and
compliances are left out (nothing here uses them).

    python3 scripts/gen-mibs.py            # writes resources/mibs/*.txt
    python3 scripts/gen-mibs.py --check    # exit 1 when the files differ from the output
"""

import argparse
import os
import sys
import textwrap

PYSNMP_MIBS = "/usr/lib/python3/dist-packages/pysnmp_mibs"
PYSNMP_SMI = "/usr/lib/python3/dist-packages/pysnmp/smi/mibs"
OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "mibs"))

# (module, compiled file, RFC, definitions kept: None for all but groups/compliances)
MODULES = [
    ("SNMP-FRAMEWORK-MIB", os.path.join(PYSNMP_SMI, "SNMP-FRAMEWORK-MIB.py"), "RFC 3411",
     # ENTITY-MIB imports SnmpAdminString only; the rest of the module is not carried.
     {"snmpFrameworkMIB", "SnmpAdminString"}),
    ("HOST-RESOURCES-MIB", os.path.join(PYSNMP_MIBS, "HOST-RESOURCES-MIB.py"), "RFC 2790", None),
    ("HOST-RESOURCES-TYPES", os.path.join(PYSNMP_MIBS, "HOST-RESOURCES-TYPES.py"), "RFC 2790",
     None),
    ("ENTITY-MIB", os.path.join(PYSNMP_MIBS, "ENTITY-MIB.py"), "RFC 4133", None),
    ("EtherLike-MIB", os.path.join(PYSNMP_MIBS, "EtherLike-MIB.py"), "RFC 3635", None),
]

# STATUS is not in libsmi2pysnmp's output: everything is `current` except what the RFCs
# deprecate (RFC 4133 section 3.1 and the MIB; RFC 3635).
DEPRECATED = {"entLogicalCommunity", "dot3StatsEtherChipSet"}

# libsmi2pysnmp 0.1.3 keeps UNITS for scalars (hrMemorySize) but not for columns: these
# are RFC 2790's, so that walks print "4096 Bytes" as net-snmp does with the RFC's text.
COLUMN_UNITS = {
    "hrStorageAllocationUnits": "Bytes",
    "hrDiskStorageCapacity": "KBytes",
    "hrPartitionSize": "KBytes",
    "hrSWRunPerfMem": "KBytes",
}

# OIDs of the nodes imported from modules this script does not generate.
KNOWN_OIDS = {
    "mib-2": (1, 3, 6, 1, 2, 1),
    "transmission": (1, 3, 6, 1, 2, 1, 10),
    "snmpModules": (1, 3, 6, 1, 6, 3),
}

ASN1_NAMES = {"Integer": "INTEGER", "OctetString": "OCTET STRING",
              "ObjectIdentifier": "OBJECT IDENTIFIER"}
ACCESS = {"noaccess": "not-accessible", "readonly": "read-only", "readwrite": "read-write",
          "readcreate": "read-create", "notifyonly": "accessible-for-notify",
          "not-accessible": "not-accessible", "read-only": "read-only",
          "read-write": "read-write", "read-create": "read-create",
          "accessible-for-notify": "accessible-for-notify"}


# --- stand-ins for pysnmp's classes: they record what the compiled module says ---------

class Constraints(tuple):
    def __add__(self, other):
        return Constraints(tuple(self) + (other,))


class Syntax:
    """An imported or module-defined type; an instance is a syntax with refinements."""
    smi_name = None
    smi_module = None
    subtypeSpec = Constraints()
    namedValues = None
    displayHint = None

    def __init__(self, *args, **kwargs):
        self.extra = []
        self.named = None

    def subtype(self, subtypeSpec=None, namedValues=None, **kwargs):
        clone = type(self)()
        clone.extra = list(self.extra)
        clone.named = self.named
        if subtypeSpec is not None:
            clone.extra.append(subtypeSpec)
        if namedValues is not None:
            clone.named = namedValues
        return clone

    def __getattr__(self, name):  # asOctets() and friends in hand-written class bodies
        return lambda *a, **k: self


class TextualConvention:
    pass


class Node:
    created = []

    def __init__(self, oid, syntax=None):
        self.kind = type(self).__name__
        self.oid = tuple(oid)
        self.syntax = syntax
        self.access = None
        self.units = None
        self.index = None
        self.augments = None
        self.objects = ()
        self.revisions = ()
        self.status = None
        Node.created.append(self)

    def setMaxAccess(self, v):
        self.access = v
        return self

    def setUnits(self, v):
        self.units = v
        return self

    def setIndexNames(self, *names):
        if self.index is None:
            self.index = names
        return self

    def getIndexNames(self):
        return self.index or ()

    def setObjects(self, *objects):
        self.objects = objects
        return self

    def setRevisions(self, revisions):
        self.revisions = revisions
        return self

    def setStatus(self, v):
        self.status = v
        return self

    def registerAugmentions(self, *rows):
        self.augmented_by = rows
        return self

    def __getattr__(self, name):  # setDescription, setReference, ...: text, discarded
        return lambda *a, **k: self


NODE_KINDS = {k: type(k, (Node,), {}) for k in (
    "MibIdentifier", "MibScalar", "MibTable", "MibTableRow", "MibTableColumn",
    "ObjectIdentity", "NotificationType", "ModuleIdentity", "ObjectGroup",
    "NotificationGroup", "ModuleCompliance", "AgentCapabilities")}


class Imported:
    """A node imported from another module (mib-2, ifIndex): a name, nothing else."""

    def __init__(self, module, name):
        self.smi_module = module
        self.smi_name = name


def constraint(kind):
    return lambda *args: (kind, args)


class Builder:
    loadTexts = True

    def __init__(self):
        self.imports = {}  # python object id -> (module, name)
        self.augments = []

    def importSymbols(self, module, *names):
        out = []
        for name in names:
            if module == "ASN1":
                obj = type(name, (Syntax,), {"smi_name": ASN1_NAMES[name]})
            elif module == "ASN1-ENUMERATION":
                obj = lambda *pairs: list(pairs)
            elif module == "ASN1-REFINEMENT":
                obj = constraint(name)
            elif name in NODE_KINDS:
                obj = NODE_KINDS[name]
            elif name == "TextualConvention":
                obj = TextualConvention
            elif name[0].isupper():
                obj = type(name, (Syntax,), {"smi_name": name, "smi_module": module})
            else:
                obj = Imported(module, name)
            out.append(obj)
        return tuple(out)

    def exportSymbols(self, *args, **kwargs):
        pass


def load(path):
    Node.created = []
    builder = Builder()
    namespace = {"mibBuilder": builder, "__name__": "compiled_mib"}
    with open(path, encoding="utf-8") as f:
        code = f.read()
    exec(compile(code, path, "exec"), namespace)
    names = {}
    for key, value in namespace.items():
        if isinstance(value, Node):
            names[id(value)] = key
    nodes = []
    for node in Node.created:
        node.name = names[id(node)]
        nodes.append(node)
    types = [(k, v) for k, v in namespace.items()
             if isinstance(v, type) and issubclass(v, Syntax) and "smi_name" not in v.__dict__]
    return nodes, types


# --- writing SMIv2 ---------------------------------------------------------------------

def smi_base(cls):
    for base in cls.__mro__[1:]:
        if isinstance(base, type) and issubclass(base, Syntax) and "smi_name" in base.__dict__:
            return base
    raise ValueError(f"no SMI base type for {cls.__name__}")


def refinements(constraints, named):
    if named:
        values = sorted(named, key=lambda p: p[1])
        items = [f"{n}({v})" for n, v in values]
        if len(items) <= 4:
            return " { " + ", ".join(items) + " }"
        return " {\n        " + ",\n        ".join(items) + "\n    }"
    ranges = [args for kind, args in constraints if kind == "ValueRangeConstraint"]
    sizes = [args for kind, args in constraints if kind == "ValueSizeConstraint"]
    if ranges:
        return " (" + " | ".join(f"{a}..{b}" for a, b in ranges[-1:]) + ")"
    if sizes:
        a, b = sizes[-1]
        return f" (SIZE ({a}))" if a == b else f" (SIZE ({a}..{b}))"
    return ""


def type_name(cls, used):
    """The name a syntax of class `cls` is written with, noting imports in `used`."""
    if "smi_name" not in cls.__dict__:  # defined in this module
        return cls.__name__
    if cls.smi_module:
        used.add((cls.smi_module, cls.smi_name))
    return cls.smi_name


def syntax_text(syntax, used, bare=False):
    cls = type(syntax)
    named = syntax.named
    name = type_name(cls, used)
    if named and name == "INTEGER":
        pass
    elif named and name == "Bits":
        used.discard(("SNMPv2-SMI", "Bits"))
        name = "BITS"
    if bare:
        return name
    return name + refinements([c for c in syntax.extra], named)


def tc_syntax(cls, used):
    base = smi_base(cls)
    named = cls.namedValues
    name = type_name(base, used)
    if named and name == "Bits":
        used.discard(("SNMPv2-SMI", "Bits"))
        name = "BITS"
    return name + refinements(list(cls.subtypeSpec), named)


def quote(text):
    return '"' + text.replace('"', "'") + '"'


def generate(module, path, rfc, keep, known):
    nodes, types = load(path)
    nodes = [n for n in nodes if n.kind not in
             ("ObjectGroup", "NotificationGroup", "ModuleCompliance", "AgentCapabilities")]
    if keep is not None:
        nodes = [n for n in nodes if n.name in keep]
        types = [(k, v) for k, v in types if k in keep]
    local = {n.oid: n.name for n in nodes}
    # Imported parents: what the compiled module imports, with OIDs known to us.
    importable = {}
    for oid, (mod, name) in known.items():
        importable.setdefault(oid, (mod, name))
    see = f"See {rfc}."
    used = set()
    macros = set()
    body = []

    def parent_of(node):
        for cut in range(len(node.oid) - 1, 0, -1):
            prefix = node.oid[:cut]
            if prefix in local and local[prefix] != node.name:
                return local[prefix], node.oid[cut:]
            if prefix in importable:
                mod, name = importable[prefix]
                if mod != module:
                    used.add((mod, name))
                return name, node.oid[cut:]
        raise ValueError(f"{module}: no parent for {node.name} {node.oid}")

    def assignment(node):
        parent, arcs = parent_of(node)
        return "::= { " + parent + " " + " ".join(map(str, arcs)) + " }"

    def status(node):
        if node.name in DEPRECATED:
            return "deprecated"
        return node.status or "current"

    identity = [n for n in nodes if n.kind == "ModuleIdentity"]
    assert len(identity) == 1, module
    ident = identity[0]
    macros.add(("SNMPv2-SMI", "MODULE-IDENTITY"))
    revisions = list(ident.revisions) or []
    if not revisions and module == "SNMP-FRAMEWORK-MIB":
        revisions = ["2002-10-14 00:00"]  # pysmi keeps it under loadTexts: RFC 3411's
    stamp = lambda r: r.replace("-", "").replace(" ", "").replace(":", "") + "Z"
    lines = [f"{ident.name} MODULE-IDENTITY",
             f"    LAST-UPDATED {quote(stamp(revisions[0]))}",
             f"    ORGANIZATION {quote('IETF (' + rfc + ')')}",
             f"    CONTACT-INFO {quote(see)}",
             "    DESCRIPTION",
             "        " + "\n         ".join(textwrap.wrap(quote(
                 f"Generated from pysnmp-mibs data; names, OIDs and syntaxes of {rfc} "
                 f"({module}). Descriptions: see {rfc}."
                 + (" Only the definitions other built-in modules import."
                    if keep is not None else "")), 78))]
    for r in revisions:
        lines += [f"    REVISION {quote(stamp(r))}", f"    DESCRIPTION {quote(see)}"]
    lines.append("    " + assignment(ident))
    body.append("\n".join(lines))

    for name, cls in types:
        macros.add(("SNMPv2-TC", "TEXTUAL-CONVENTION"))
        hint = getattr(cls, "displayHint", None)
        lines = [f"{name} ::= TEXTUAL-CONVENTION"]
        if hint:
            lines.append(f"    DISPLAY-HINT {quote(hint)}")
        lines += ["    STATUS current", f"    DESCRIPTION {quote(see)}",
                  f"    SYNTAX {tc_syntax(cls, used)}"]
        body.append("\n".join(lines))

    columns = {}  # row oid -> columns
    for n in nodes:
        if n.kind == "MibTableColumn":
            columns.setdefault(n.oid[:-1], []).append(n)
    augments = {}
    for n in nodes:
        for mod, row in n.__dict__.get("augmented_by", ()):
            augments[row] = n.name

    for n in nodes:
        if n is ident:
            continue
        if n.kind == "MibIdentifier":
            body.append(f"{n.name} OBJECT IDENTIFIER {assignment(n)}")
        elif n.kind == "ObjectIdentity":
            macros.add(("SNMPv2-SMI", "OBJECT-IDENTITY"))
            body.append("\n".join([f"{n.name} OBJECT-IDENTITY", f"    STATUS {status(n)}",
                                   f"    DESCRIPTION {quote(see)}", "    " + assignment(n)]))
        elif n.kind == "NotificationType":
            macros.add(("SNMPv2-SMI", "NOTIFICATION-TYPE"))
            lines = [f"{n.name} NOTIFICATION-TYPE"]
            if n.objects:
                names = []
                for mod, obj in n.objects:
                    if mod != module:
                        used.add((mod, obj))
                    names.append(obj)
                lines.append("    OBJECTS { " + ", ".join(names) + " }")
            lines += [f"    STATUS {status(n)}", f"    DESCRIPTION {quote(see)}",
                      "    " + assignment(n)]
            body.append("\n".join(lines))
        elif n.kind in ("MibScalar", "MibTableColumn", "MibTable", "MibTableRow"):
            macros.add(("SNMPv2-SMI", "OBJECT-TYPE"))
            row_type = None
            if n.kind == "MibTable":
                entry = next(r for r in nodes if r.kind == "MibTableRow"
                             and r.oid[:-1] == n.oid)
                syntax = "SEQUENCE OF " + entry.name[0].upper() + entry.name[1:]
                access = "not-accessible"
            elif n.kind == "MibTableRow":
                row_type = n.name[0].upper() + n.name[1:]
                syntax = row_type
                access = "not-accessible"
            else:
                syntax = syntax_text(n.syntax, used)
                access = ACCESS[n.access]
            lines = [f"{n.name} OBJECT-TYPE", f"    SYNTAX {syntax}"]
            units = n.units or COLUMN_UNITS.get(n.name)
            if units:
                lines.append(f"    UNITS {quote(units)}")
            lines += [f"    MAX-ACCESS {access}", f"    STATUS {status(n)}",
                      f"    DESCRIPTION {quote(see)}"]
            if n.kind == "MibTableRow":
                if n.name in augments:
                    lines.append("    AUGMENTS { " + augments[n.name] + " }")
                else:
                    parts = []
                    for implied, mod, obj in n.index:
                        if mod != module:
                            used.add((mod, obj))
                        parts.append(("IMPLIED " if implied else "") + obj)
                    lines.append("    INDEX { " + ", ".join(parts) + " }")
            lines.append("    " + assignment(n))
            body.append("\n".join(lines))
            if row_type:
                cols = columns.get(n.oid, [])
                fields = ",\n".join(f"    {c.name:<34} {syntax_text(c.syntax, used, bare=True)}"
                                    for c in cols)
                body.append(f"{row_type} ::= SEQUENCE {{\n{fields}\n}}")
        else:
            raise ValueError(f"{module}: {n.name}: unexpected {n.kind}")

    imports = {}
    for mod, name in sorted(used | macros):
        if mod != module:
            imports.setdefault(mod, []).append(name)
    order = ["SNMPv2-SMI", "SNMPv2-TC", "SNMP-FRAMEWORK-MIB", "IF-MIB", "HOST-RESOURCES-MIB"]
    import_lines = []
    for mod in sorted(imports, key=lambda m: (order.index(m) if m in order else 99, m)):
        import_lines.append("    " + ", ".join(imports[mod]) + f"\n        FROM {mod}")
    text = (f"-- {module}: generated by scripts/gen-mibs.py from pysnmp's compiled module\n"
            f"-- ({os.path.basename(path)}); names, OIDs and syntaxes of {rfc}, descriptions\n"
            f"-- not carried over: read {rfc} for them. Do not edit: regenerate.\n\n"
            f"{module} DEFINITIONS ::= BEGIN\n\nIMPORTS\n" + "\n".join(import_lines) + ";\n\n"
            + "\n\n".join(body) + "\n\nEND\n")
    for n in nodes:
        known[n.oid] = known.get(n.oid, (module, n.name))
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files in resources/mibs instead of writing")
    args = parser.parse_args()
    known = {oid: ("SNMPv2-SMI", name) for name, oid in KNOWN_OIDS.items()}
    differ = []
    for module, path, rfc, keep in MODULES:
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: apt-get install python3-pysnmp4-mibs")
        text = generate(module, path, rfc, keep, known)
        out = os.path.join(OUT, module + ".txt")
        if args.check:
            try:
                with open(out, encoding="utf-8") as f:
                    if f.read() != text:
                        differ.append(out)
            except FileNotFoundError:
                differ.append(out)
        else:
            with open(out, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {out}")
    if differ:
        sys.exit("not what scripts/gen-mibs.py writes: " + ", ".join(differ))


if __name__ == "__main__":
    main()
