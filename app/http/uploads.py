"""GraphQL multipart requests (https://github.com/jaydenseric/graphql-multipart-request-spec):
an `operations` field with the JSON request (files as null placeholders), a `map` field
saying which file part goes where, then the file parts. Every way of getting that wrong is
a 400 that says what is wrong.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from app.http.protocol import RequestRefused, decode_json, request_params

# uploadMedia takes one file; a few more leave room without inviting thousands of parts.
MAX_FILES = 10
MAX_FIELDS = 10
_EXAMPLE = '{"0": ["variables.file"]}'


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS)
    except StarletteHTTPException as exc:  # what Starlette makes of a MultiPartException
        raise RequestRefused(400, f"The multipart body could not be parsed: {exc.detail}") from None
    except MultiPartException as exc:
        raise RequestRefused(
            400, f"The multipart body could not be parsed: {exc.message}"
        ) from None


def _text_field(form: FormData, name: str, purpose: str) -> str:
    value = form.get(name)
    if value is None:
        raise RequestRefused(
            400,
            f'A multipart GraphQL request needs an "{name}" field ({purpose}); this one has none.',
        )
    if not isinstance(value, str):
        raise RequestRefused(
            400, f'The "{name}" field must be a text field holding JSON, not a file.'
        )
    return value


def _place(operations: dict[str, Any], path: str, upload: UploadFile) -> None:
    """Put `upload` where `path` (e.g. `variables.files.0`) points; it must point at a
    null placeholder, so a typo in the path is an error rather than a file silently lost."""
    wrong = RequestRefused(
        400, f'The "map" path "{path}" does not lead to a null placeholder in "operations".'
    )
    *parents, last = path.split(".")
    target: Any = operations
    for key in [*parents, last]:
        container = target
        if isinstance(container, dict):
            if key not in container:
                raise wrong
            target = container[key]
        elif isinstance(container, list):
            if not key.isdigit() or int(key) >= len(container):
                raise wrong
            target = container[int(key)]
        else:
            raise wrong
    if target is not None:
        raise wrong
    if isinstance(container, dict):
        container[last] = upload
    else:
        container[int(last)] = upload


def operations_from_form(form: FormData) -> dict[str, Any]:
    """The GraphQL request of a multipart body, with the file parts in place."""
    operations = decode_json(
        _text_field(form, "operations", "the JSON request, with null where files go"),
        'The "operations" field',
    )
    if not isinstance(operations, dict):
        request_params(operations, 'The "operations" field')  # raises, saying why
    files_map = decode_json(
        _text_field(form, "map", f"which file part goes where, e.g. {_EXAMPLE}"),
        'The "map" field',
    )
    if not isinstance(files_map, dict) or not all(
        isinstance(paths, list) and paths and all(isinstance(p, str) for p in paths)
        for paths in files_map.values()
    ):
        raise RequestRefused(
            400,
            f'The "map" field must be a JSON object from file part names to lists of paths in '
            f'"operations", e.g. {_EXAMPLE}.',
        )
    for name, paths in files_map.items():
        upload = form.get(name)
        if upload is None:
            raise RequestRefused(
                400, f'The "map" names the file part "{name}", but the request has no such part.'
            )
        if not isinstance(upload, UploadFile):
            raise RequestRefused(
                400, f'The part "{name}" must be a file (with a filename), not a text value.'
            )
        if not upload.filename:
            raise RequestRefused(400, f'The file part "{name}" has an empty filename.')
        for path in paths:
            _place(operations, path, upload)
    return request_params(operations, 'The "operations" field')
