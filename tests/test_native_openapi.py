"""The native API's OpenAPI document answers for every call gumnut-sdk 0.178 makes.

The SDK is generated from the Gumnut API's own document, so its resource methods are the
contract: each one calls `self._get/_post/_patch/_put/_delete(path, body=..., options=...)`
with a params TypedDict and a response model. The operations are read out of the installed
SDK's source (ast), not copied by hand, and each is checked against the document this server
serves: the path and method exist, every query parameter and body field the SDK sends exists
with a type it can carry, and every field of the SDK's response model exists in the response
schema with a type the model can read.

Where the server is knowingly short of the SDK, the test names it: NOT_IMPLEMENTED (operations
it does not serve yet), PENDING_TYPED_BODY (routes whose body is still an untyped dict) and
KNOWN_GAPS (routes whose declared types do not say all they accept or answer). Each list is
checked both ways, so mending a gap without deleting its entry fails too.

The document is built in-process: generating it needs the routes' types, not a database.
"""

from __future__ import annotations

import ast
import collections.abc
import copy
import dataclasses
import datetime
import importlib
import inspect
import pkgutil
import re
import types
import typing

import gumnut
import gumnut.resources
import pydantic
import pytest
import typing_extensions
from gumnut._types import FileTypes, SequenceNotStr
from gumnut._utils import PropertyInfo
from litestar.testing import TestClient

SDK_VERSION = "0.178"

# Operations the SDK offers that this server does not serve yet, by "METHOD /path".
NOT_IMPLEMENTED = {
    # Gumnut's hosted services: product feedback and OAuth sign-in.
    "POST /api/feedback",
    "GET /api/oauth/auth-url", "POST /api/oauth/exchange", "GET /api/oauth/logout-endpoint",
}

# Routes whose request body is still (or still holds) a `dict[str, Any]`: their body findings are
# set aside; once a route's body passes the check, the test says to delete its entry here. Every
# native body is typed now, so none is pending.
PENDING_TYPED_BODY: set[str] = set()

# What the document does not (yet) say about routes that do work. Each entry is a finding key of
# check_operation below; the fix belongs in the route's signature or schemas.py, then the entry goes.
# (Query parameters a route reads from the raw query, through app/api/params.py, are declared in its
# signature or in a dependency's, e.g. ASSET_FILTER_PARAMS, for the document.)
KNOWN_GAPS: dict[str, set[str]] = {
    # The upload is multipart, streamed and parsed by hand: no body in the document.
    "POST /api/assets": {"body"},
    # Multipart (an optional image) parsed by hand, like the upload.
    "POST /api/search": {"body"},
    # Version renderings are multipart uploads, parsed by hand like the upload.
    "POST /api/assets/{}/versions": {"body"},
    "POST /api/assets/{}/versions/{}/replace": {"body"},
}


# --- the SDK's operations, read from its source ---------------------------------------------------

_CALLS = {"_get": "GET", "_get_api_list": "GET", "_post": "POST", "_patch": "PATCH", "_put": "PUT",
          "_delete": "DELETE"}


@dataclasses.dataclass
class Operation:
    method: str
    path: str  # as the SDK writes it, e.g. /api/albums/{album_id}
    sdk_method: str  # e.g. albums.albums.AlbumsResource.update
    query: dict[str, typing.Any]  # wire name -> annotation
    body: dict[str, typing.Any] | None  # wire name -> annotation; None: no body
    body_required: set[str]
    body_name: str  # the SDK's params TypedDict, for messages
    multipart: bool
    response: typing.Any  # a model class, str, or a Page[...] marker
    page: bool

    @property
    def key(self) -> str:
        return f"{self.method} {normalise(self.path)}"


def normalise(path: str) -> str:
    """Path parameters are compared by position, not name; Litestar serves paths without a trailing slash."""
    return re.sub(r"\{[^}]*\}", "{}", path).rstrip("/") or "/"


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _transform(node: ast.expr | None, namespace: dict) -> tuple[list[str] | None, type] | None:
    """`maybe_transform({...} or body, params.Type)`: the SDK argument names it sends, and the TypedDict."""
    if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "maybe_transform"):
        return None
    values, params = node.args
    params_type = eval(ast.unparse(params), namespace)  # e.g. album_update_params.AlbumUpdateParams
    names = [k.value for k in values.keys] if isinstance(values, ast.Dict) else None  # None: all its keys
    return names, params_type


def _unwrap(annotation):
    """Strip Required/NotRequired and Annotated, returning the type and any PropertyInfo alias."""
    alias = None
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            for extra in annotation.__metadata__:
                if isinstance(extra, PropertyInfo) and extra.alias:
                    alias = extra.alias
            annotation = annotation.__origin__
        elif origin in (typing.Required, typing.NotRequired):
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, alias


def typed_dict_fields(params_type: type, names: list[str] | None = None) -> tuple[dict[str, typing.Any], set[str]]:
    """Wire name -> annotation for a TypedDict's keys (those the SDK passes, if named), and the required ones."""
    hints = typing.get_type_hints(params_type, include_extras=True)
    fields, required = {}, set()
    for name, annotation in hints.items():
        if names is not None and name not in names:
            continue
        annotation, alias = _unwrap(annotation)
        fields[alias or name] = annotation
        if name in params_type.__required_keys__:
            required.add(alias or name)
    return fields, required


def sdk_operations() -> list[Operation]:
    found = []
    for info in pkgutil.walk_packages(gumnut.resources.__path__, gumnut.resources.__name__ + "."):
        module = importlib.import_module(info.name)
        tree = ast.parse(inspect.getsource(module))
        for cls in tree.body:
            # The async twins make the same calls; the sync classes are the list.
            if not (isinstance(cls, ast.ClassDef) and cls.name.endswith("Resource")) or cls.name.startswith("Async"):
                continue
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef):
                    found.extend(_operations_in(module, cls.name, fn))
    return found


def _operations_in(module, cls_name: str, fn: ast.FunctionDef):
    namespace = vars(module)
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CALLS
                and getattr(node.func.value, "id", None) == "self"):
            continue
        path = node.args[0]
        if isinstance(path, ast.Call):  # path_template("/api/x/{x_id}", x_id=x_id)
            path = path.args[0]
        query: dict = {}
        options = _keyword(node, "options")
        if options is not None and (q := _transform(_keyword(options, "query"), namespace)):
            query, _ = typed_dict_fields(q[1], q[0])
        body, body_required, body_name = None, set(), ""
        if b := _transform(_keyword(node, "body"), namespace):
            body, body_required = typed_dict_fields(b[1], b[0])
            body_name = b[1].__name__
            # A POST may carry a query and a body from one TypedDict (check_existence): split them.
            body = {k: v for k, v in body.items() if k not in query}
        page = _keyword(node, "page")
        if page is not None:  # SyncCursorPage[Model]
            response = eval(ast.unparse(page.slice), namespace)
        else:
            response = eval(ast.unparse(_keyword(node, "cast_to")), namespace)
        yield Operation(
            method=_CALLS[node.func.attr], path=path.value, query=query, body=body, body_required=body_required,
            body_name=body_name,
            sdk_method=f"{module.__name__.removeprefix('gumnut.resources.')}.{cls_name}.{fn.name}",
            multipart=_keyword(node, "files") is not None, response=response, page=page is not None,
        )


OPERATIONS = sdk_operations()
IMPLEMENTED = [op for op in OPERATIONS if op.key not in NOT_IMPLEMENTED]


# --- the served document ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    from app.api.app import create_native_app
    from app.api.state import Shared
    from app.settings import load_settings

    with TestClient(create_native_app(Shared.build(load_settings()))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def document(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200, response.text
    return response.json()


def operations_in(document: dict) -> dict[str, dict]:
    return {f"{method.upper()} {normalise(path)}": operation
            for path, item in document["paths"].items() for method, operation in item.items()
            if method in ("get", "post", "put", "patch", "delete")}


class Schemas:
    """JSON schema reading over one document: references resolved, unions flattened."""

    def __init__(self, document: dict):
        self.components = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict) -> dict:
        seen = 0
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
            seen += 1
            assert seen < 50, "reference cycle"
        return schema

    def alternatives(self, schema: dict) -> list[dict]:
        schema = self.resolve(schema)
        for union in ("oneOf", "anyOf"):
            if union in schema:
                return [alt for part in schema[union] for alt in self.alternatives(part)]
        if isinstance(schema.get("type"), list):
            return [{**schema, "type": t} for t in schema["type"]]
        return [schema]


# --- comparing a Python annotation with a JSON schema -------------------------------------------

_NONE = type(None)
_LISTS = {list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Iterable, SequenceNotStr}
_DICTS = {dict, collections.abc.Mapping}
_FILE_MEMBERS = set(typing.get_args(FileTypes))


def _members(annotation) -> list:
    annotation, _ = _unwrap(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _is_model(annotation) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel)


def _is_typed_dict(annotation) -> bool:
    return typing_extensions.is_typeddict(annotation)  # the SDK's TypedDicts come from typing_extensions


def _shape_fields(shape) -> dict[str, tuple[typing.Any, bool]]:
    """Wire name -> (annotation, required) of an SDK response model or params TypedDict."""
    if _is_model(shape):
        return {(f.alias or name): (f.annotation, f.is_required()) for name, f in shape.model_fields.items()}
    hints, required = typed_dict_fields(shape)
    return {name: (annotation, name in required) for name, annotation in hints.items()}


class Checker:
    """Collects findings as (key, detail); `key` names the place, e.g. `response.data[].name`."""

    def __init__(self, schemas: Schemas):
        self.schemas = schemas
        self.findings: dict[str, str] = {}

    def find(self, key: str, detail: str) -> None:
        self.findings.setdefault(key, detail)

    def value(self, key: str, annotation, schema: dict, sending: bool, nulls: bool = True) -> None:
        """Does `annotation` fit `schema`? Sending: the SDK writes it (each SDK type must be accepted).
        Receiving: the server writes it (each schema alternative must be readable by the SDK)."""
        py = _members(annotation)
        if typing.Any in py or object in py:
            return
        alts = self.schemas.alternatives(schema)
        if not alts or alts == [{}]:
            # An unconstrained schema accepts and may produce anything, but promises none of a model's fields.
            if not any(_is_model(m) or _is_typed_dict(m) for m in py):
                return
            alts = [{"type": "object"}]
        py_null = _NONE in py
        schema_null = any(a.get("type") == "null" for a in alts)
        py = [m for m in py if m is not _NONE]
        alts = [a for a in alts if a.get("type") != "null"]
        if nulls and sending and py_null and not schema_null:
            self.find(key, "the SDK may send null; the server's schema does not accept it")
        if nulls and not sending and schema_null and not py_null:
            self.find(key, "the server may answer null; the SDK's model does not allow it")
        if sending:
            if set(py) & _FILE_MEMBERS:  # a file part of a multipart body
                py = [m for m in py if m not in _FILE_MEMBERS]
                if not any(a.get("type") == "string" for a in alts):
                    self.find(key, f"a file is sent; the server's schema is {alts}")
            for member in py:
                if not any(self.fits(key, member, alt, sending) for alt in alts):
                    self.find(key, f"the SDK sends {member!r}; the server accepts {alts}")
        else:
            for alt in alts:
                if not any(self.fits(key, member, alt, sending) for member in py):
                    self.find(key, f"the server answers {alt}; the SDK reads {py}")

    def fits(self, key: str, member, schema: dict, sending: bool) -> bool:
        """One non-null type against one non-null schema alternative; nested objects are checked field by field."""
        kind = schema.get("type")
        origin = typing.get_origin(member) or member
        if member in (typing.Any, object) or kind is None and not schema.get("properties"):
            return True
        if origin is typing.Literal:
            values = set(typing.get_args(member))
            if "const" in schema:
                return values == {schema["const"]} if sending else schema["const"] in values
            if "enum" in schema:
                return values <= set(schema["enum"]) if sending else set(schema["enum"]) <= values
            return kind == "string" and all(isinstance(v, str) for v in values)
        if member is bool:
            return kind == "boolean"
        if member is int:
            return kind == "integer" or (sending and kind == "number")
        if member is float:
            return kind == "number" or (not sending and kind == "integer")
        if member in (str, datetime.datetime, datetime.date):
            # A date's format is not enforced: the SDK sends and parses ISO 8601 strings either way.
            return kind == "string"
        if member is bytes:
            return kind == "string"
        if origin in _LISTS:
            if kind != "array":
                return False
            (item,) = typing.get_args(member) or (typing.Any,)
            self.value(f"{key}[]", item, schema.get("items", {}), sending)
            return True
        if origin in _DICTS:
            if kind != "object":
                return False
            args = typing.get_args(member)
            extra = schema.get("additionalProperties")
            if args and isinstance(extra, dict):
                self.value(f"{key}{{}}", args[1], extra, sending)
            return True
        if _is_model(member) or _is_typed_dict(member):
            if kind != "object":
                return False
            if not schema.get("properties") and _shape_fields(member):
                self.find(key, f"an untyped object; the SDK {'sends' if sending else 'reads'} {member.__name__}")
            else:
                self.fields(key, member, schema, sending)
            return True
        raise AssertionError(f"{key}: no rule for the SDK type {member!r}")

    def fields(self, key: str, shape, schema: dict, sending: bool) -> None:
        """Every field the SDK knows exists in the schema's properties with a fitting type."""
        schema = self.schemas.resolve(schema)
        properties = schema.get("properties", {})
        server_required = set(schema.get("required", []))
        known = _shape_fields(shape)
        prefix = f"{key}."
        for name, (annotation, sdk_required) in known.items():
            if name not in properties:
                self.find(prefix + name, "the SDK knows this field; the server's schema lacks it")
                continue
            if not sending and sdk_required and name not in server_required:
                self.find(prefix + name, "the SDK requires this field; the server's schema may leave it out")
            self.value(prefix + name, annotation, properties[name], sending)
        if sending:
            for name in sorted(server_required - set(known)):
                self.find(prefix + name, "the server requires this field; the SDK cannot send it")


def _json_schema(content: dict) -> dict | None:
    for media_type, entry in content.items():
        if "json" in media_type or media_type.startswith("text/"):
            return entry.get("schema", {})
    return None


def check_operation(op: Operation, served: dict, schemas: Schemas) -> dict[str, str]:
    """Everything one SDK operation needs from one served operation, as findings by key."""
    checker = Checker(schemas)
    # Query parameters: each one the SDK may send is declared with a type it can carry.
    declared = {p["name"]: p for p in served.get("parameters", []) if p["in"] == "query"}
    for name, annotation in op.query.items():
        if name not in declared:
            checker.find(f"query.{name}", "the SDK sends this query parameter; the route does not declare it")
        else:
            # An absent parameter is how the SDK says None; a query carries no null.
            checker.value(f"query.{name}", annotation, declared[name].get("schema", {}), sending=True, nulls=False)
    for name in sorted(n for n, p in declared.items() if p.get("required") and n not in op.query):
        checker.find(f"query.{name}", "the route requires this query parameter; the SDK cannot send it")
    # Path parameters are all strings in the SDK.
    for param in served.get("parameters", []):
        if param["in"] == "path":
            checker.value(f"path.{param['name']}", str, param.get("schema", {}), sending=True)
    # The body.
    if op.body is not None:
        request = served.get("requestBody")
        if request is None:
            checker.find("body", "the SDK sends a body; the route declares none")
        else:
            content = request.get("content", {})
            wanted = "multipart/form-data" if op.multipart else "application/json"
            if wanted not in content:
                checker.find("body", f"the SDK sends {wanted}; the route declares {sorted(content)}")
            else:
                schema = content[wanted].get("schema", {})
                shape = typing.TypedDict(op.body_name, {k: typing.Required[v] if k in op.body_required else v
                                                  for k, v in op.body.items()}, total=False)
                checker.value("body", shape, schema, sending=True)
    # The response: any 2xx the route declares (but a bodiless 204) must be readable as the SDK's model.
    answers = {code: r for code, r in served.get("responses", {}).items() if code.startswith("2")}
    if not answers:
        checker.find("response", "the route declares no successful response")
    for code, answer in answers.items():
        if code == "204":
            # No Content: the SDK reads no body (Gumnut documents a 204 where one applies); it must carry none.
            if answer.get("content"):
                checker.find("response", "204 declares content")
            continue
        schema = _json_schema(answer.get("content", {}))
        if schema is None:
            checker.find("response", f"{code} declares no JSON or text content")
            continue
        if op.page:
            page = schemas.resolve(schema)
            properties = page.get("properties", {})
            for name in ("data", "has_more"):
                if name not in properties:
                    checker.find(f"response.{name}", "a cursor page needs it; the server's schema lacks it")
            if "data" in properties:
                checker.value("response.data", list[op.response], properties["data"], sending=False)
            if "has_more" in properties:
                checker.value("response.has_more", bool | None, properties["has_more"], sending=False)
        else:
            checker.value("response", op.response, schema, sending=False)
    return checker.findings


# --- the tests --------------------------------------------------------------------------------------

def test_sdk_is_the_version_this_contract_was_checked_against():
    # A newer SDK may call more or differently: re-read NOT_IMPLEMENTED and the gaps, then bump this.
    assert gumnut.__version__.startswith(SDK_VERSION + "."), gumnut.__version__


def test_the_sdk_operations_were_found():
    keys = [op.key for op in OPERATIONS]
    assert len(keys) == len(set(keys)), "two SDK methods call the same operation"
    assert len(OPERATIONS) >= 80
    assert {"GET /api/assets", "PATCH /api/albums/{}", "POST /api/people/{}/merge"} <= set(keys)


def test_document_is_served_publicly_with_the_package_version(client, document):
    import app

    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Photos native API"
    assert document["info"]["version"] == app.__version__
    # The document and its page are not operations of the API.
    assert not any("openapi" in path or "docs" in path for path in document["paths"])


def test_public_routes_need_no_credential_in_the_document(document):
    assert document["security"] == [{"api_key": []}]
    assert document["paths"]["/api/server/ping"]["get"]["security"] == []
    assert "security" not in document["paths"]["/api/assets"]["get"]  # the default: the bearer key


def test_docs_page_answers_html(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/api/openapi.json" in page.text


def test_unknown_api_paths_still_answer_the_api_s_json_404(client):
    # Litestar's docs router answers unknown paths below its root with HTML; mounted at /api/docs, it
    # leaves the API's own paths alone.
    for method in ("GET", "POST"):
        missing = client.request(method, "/api/no-such-thing")
        assert missing.status_code == 404, method
        assert missing.headers["content-type"].startswith("application/json")


def test_the_checker_notices_what_a_route_drops_or_mistypes(document):
    broken = copy.deepcopy(document)
    schemas = Schemas(broken)
    create = operations_in(broken)["POST /api/albums"]
    body = schemas.resolve(create["requestBody"]["content"]["application/json"]["schema"])
    del body["properties"]["description"]
    (answer,) = [r for code, r in create["responses"].items() if code.startswith("2")]
    album = schemas.resolve(answer["content"]["application/json"]["schema"])
    album["properties"]["asset_count"] = {"type": "string"}
    album["properties"]["name"] = {"oneOf": [{"type": "string"}, {"type": "null"}]}
    create["parameters"] = [{"name": "dry_run", "in": "query", "required": True, "schema": {"type": "boolean"}}]
    op = next(op for op in OPERATIONS if op.key == "POST /api/albums")
    assert set(check_operation(op, create, schemas)) == {
        "body.description", "response.asset_count", "response.name", "query.dry_run"}


def test_lists_name_sdk_operations_only():
    keys = {op.key for op in OPERATIONS}
    assert NOT_IMPLEMENTED - keys == set()
    assert PENDING_TYPED_BODY - keys == set()
    assert set(KNOWN_GAPS) - keys == set()
    assert not NOT_IMPLEMENTED & (PENDING_TYPED_BODY | set(KNOWN_GAPS))


def test_not_implemented_operations_are_absent(document):
    served = operations_in(document)
    implemented_after_all = sorted(NOT_IMPLEMENTED & set(served))
    assert implemented_after_all == [], "served now: remove them from NOT_IMPLEMENTED"


def test_pending_typed_bodies_are_still_untyped(document):
    """A route whose body now declares what the SDK sends leaves PENDING_TYPED_BODY, so it stays checked."""
    served = operations_in(document)
    by_key = {op.key: op for op in OPERATIONS}
    passing = [key for key in sorted(PENDING_TYPED_BODY)
               if key in served and not _body_findings(check_operation(by_key[key], served[key], Schemas(document)))]
    assert passing == [], "these routes' bodies pass now: remove them from PENDING_TYPED_BODY"


def _body_findings(findings: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in findings.items() if k.startswith("body")}


@pytest.mark.parametrize("op", IMPLEMENTED, ids=lambda op: op.key)
def test_sdk_operation_matches_the_document(document, op: Operation):
    served = operations_in(document).get(op.key)
    assert served is not None, f"{op.sdk_method} calls {op.method} {op.path}, which the document lacks"
    findings = check_operation(op, served, Schemas(document))
    if op.key in PENDING_TYPED_BODY:
        findings = {k: v for k, v in findings.items() if k not in _body_findings(findings)}
    expected = KNOWN_GAPS.get(op.key, set())
    unexpected = {k: v for k, v in findings.items() if k not in expected}
    mended = expected - set(findings)
    assert not unexpected, f"{op.sdk_method}: " + "; ".join(f"{k}: {v}" for k, v in sorted(unexpected.items()))
    assert not mended, f"{op.sdk_method}: no longer a gap, remove from KNOWN_GAPS: {sorted(mended)}"
