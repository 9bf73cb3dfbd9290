# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Read a config that was stored as text (in a checkpoint's ``meta['cfg']``
or a published file's metadata) as data, never as a program.

A config file is Python, and MMEngine executes it (``Config.fromfile``,
``Config.fromstring``). That is right for a config the user wrote and wrong
for one found in a file somebody else made: a checkpoint that loads with
``torch.load(weights_only=True)`` can still carry config text such as
``_x = __import__('os').system(...)``. MMEngine stores the config as
``cfg.pretty_text``: assignments of literals, lists, tuples, dicts,
``dict(key=value, ...)`` and ``dict({...})`` (every shipped config
round-trips). :func:`config_from_stored_text` accepts exactly that grammar
and evaluates it itself, as ``ast.literal_eval`` does; anything else (a
call of another name, an attribute, an import, an operator) is refused
with the line it is on.

Parsing as data is not enough on its own: MMEngine's registries resolve a
``type`` they do not know by importing it (``type='subprocess.getoutput'``
builds a call of that function). :func:`check_registered_types` therefore
accepts only ``type`` names registered in mmseg's registries (and their
MMEngine parents) before anything is built from a stored config.
"""
import ast
from typing import Any, Iterator, Tuple

import mmseg.registry
from mmengine.config import Config
from mmengine.registry import Registry

#: Scopes a ``type`` may name explicitly (``'mmseg.ZegOTHead'``).
_SCOPES = ('mmseg', 'mmengine')


class StoredConfigError(ValueError):
    """A stored config that is not plain data, or that names a ``type``
    outside the registries."""


def _refuse(source: str, node: ast.AST, what: str, fix: str) -> None:
    """Raise :class:`StoredConfigError` for ``what`` at ``node``'s line."""
    raise StoredConfigError(
        f'The config stored in {source} is not plain data: line '
        f'{getattr(node, "lineno", "?")} has {what}. Stored configs are '
        f'never executed; {fix}')


def _value(node: ast.AST, source: str, fix: str) -> Any:
    """Evaluate one expression of the stored-config grammar."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_value(item, source, fix) for item in node.elts]
        return {ast.List: list, ast.Tuple: tuple,
                ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            _refuse(source, node, 'a `**` expansion', fix)
        return {_value(key, source, fix): _value(value, source, fix)
                for key, value in zip(node.keys, node.values)}
    if (isinstance(node, ast.UnaryOp)
            and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float))):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name != 'dict':
            _refuse(source, node, f'a call of {ast.unparse(node.func)!r}',
                    fix)
        # MMEngine writes dict({'a.b': ...}) for keys that are not names.
        literal = node.args[0] if len(node.args) == 1 else None
        if (len(node.args) > 1 or node.args and not isinstance(
                literal, ast.Dict)
                or any(kw.arg is None for kw in node.keywords)):
            _refuse(source, node, 'a dict(...) with arguments other than '
                    'key=value and one {...}', fix)
        value = _value(literal, source, fix) if literal else {}
        value.update((kw.arg, _value(kw.value, source, fix))
                     for kw in node.keywords)
        return value
    _refuse(source, node, f'the expression {ast.unparse(node)[:60]!r}', fix)


def config_from_stored_text(text: str, source: str, fix: str) -> Config:
    """Parse config text stored by MMEngine (``pretty_text``) as data.

    Args:
        text (str): The stored config text.
        source (str): Where it comes from, for messages (e.g. the file).
        fix (str): What the user should do instead, for messages (e.g. pass
            the config file they wrote as ``--config``).

    Returns:
        Config: The config, its ``type`` names checked by
        :func:`check_registered_types`. ``custom_imports`` are not imported.

    Raises:
        StoredConfigError: If the text is not Python, holds any statement
            other than ``name = <data>``, any expression other than
            constants, lists, tuples, sets, dicts, ``dict(key=value)`` and
            ``dict({...})``, or a ``type`` that is not registered.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise StoredConfigError(
            f'The config stored in {source} cannot be parsed ({err}); '
            f'{fix}') from err
    cfg = {}
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            _refuse(source, statement,
                    f'the statement {ast.unparse(statement)[:60]!r}', fix)
        cfg[statement.targets[0].id] = _value(statement.value, source, fix)
    check_registered_types(cfg, source, fix)
    return Config(cfg)


def _types(value: Any, path: str) -> Iterator[Tuple[str, Any]]:
    """Every ``type`` entry in a nested config, with its key path."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f'{path}.{key}' if path else str(key)
            if key == 'type':
                yield where, item
            else:
                yield from _types(item, where)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _types(item, f'{path}.{index}')


def registered_names() -> frozenset:
    """The names registered in every mmseg registry and its MMEngine
    parents (what a stored config may name as ``type``)."""
    names = set()
    for registry in vars(mmseg.registry).values():
        while isinstance(registry, Registry):
            registry.import_from_location()
            names.update(registry.module_dict)
            registry = registry.parent
    return frozenset(names)


def check_registered_types(cfg: dict, source: str, fix: str) -> None:
    """Refuse a ``type`` that is not a registered name.

    MMEngine's ``Registry.get`` imports an unknown dotted ``type`` and calls
    it, so a stored config could name any function. Only names registered
    in mmseg's registries (plain, or prefixed by ``mmseg.``/``mmengine.``)
    are accepted.

    Raises:
        StoredConfigError: Naming the key of the first other ``type``.
    """
    known = registered_names()
    for where, name in _types(cfg, ''):
        scope, _, plain = name.rpartition('.') if isinstance(
            name, str) else ('', '', None)
        if scope in ('', *_SCOPES) and plain in known:
            continue
        raise StoredConfigError(
            f'The config stored in {source} has {where}={name!r}, which is '
            "not a name registered in mmseg's registries (MMEngine would "
            f'import and call it); {fix}')
