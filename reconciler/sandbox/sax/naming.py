"""Sax's names and the errors its admin answers, in its own words (saxml common/naming.go, admin/validator.go,
admin/mgr.go at v1.1.0, the tutorial's images).

Sax wraps a canonical gRPC error with `fmt.Errorf("...: %w", errors.ErrX)`, so the text ends in the wrapped
status' own text ("rpc error: code = NotFound desc = NotFound"). The admin pins a grpc-go whose status conversion
does not unwrap wrapped errors: on the wire the code is most likely UNKNOWN (RECIPES §11), which is what the
stand-in sends; a client must recognise the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

NAME_PATTERN = "^[a-z]+[a-z0-9-_]*$"
MODEL_PATH_PATTERN = "^[a-zA-Z]+[a-zA-Z0-9_.-]*$"
CHECKPOINT_PATTERN = r"^(/|\d|\w|_|\.|-|%|:|=|\|)+$"  # v1.1.0 (HEAD also allows "+")
# Go's RE2: \w is ASCII and $ is the end of the text (fullmatch, since Python's $ also matches before a final "\n").
_NAME = re.compile(NAME_PATTERN, re.ASCII)
_MODEL_PATH = re.compile(MODEL_PATH_PATTERN, re.ASCII)
_CHECKPOINT = re.compile(CHECKPOINT_PATTERN, re.ASCII)



def go_code_name(code: str) -> str:
    """Go's codes.Code.String(): NOT_FOUND → NotFound (CANCELLED is spelt Canceled)."""
    return "Canceled" if code == "CANCELLED" else "".join(part.title() for part in code.split("_"))


class SaxError(Exception):
    """An error of Sax's Go code, str() the text Go's err.Error() gives: `text` wrapping the canonical error of
    `code` (or, with code None, wrapping nothing more: `text` is whole)."""

    def __init__(self, text: str, code: str | None):
        self.code = code
        super().__init__(text if code is None else f"{text}: {go_status_text(code, go_code_name(code))}")


def go_status_text(code: str, message: str) -> str:
    """What grpc-go's status error prints: "rpc error: code = NotFound desc = ..."."""
    return f"rpc error: code = {go_code_name(code)} desc = {message}"


def go_quote(text: str) -> str:
    """Go's %q of a string (close enough for the printable strings names are)."""
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ModelName:
    """/sax/<cell>/<model>. str() is the canonical id; `go` is how Sax's %s prints its ModelFullName struct."""

    cell: str
    model: str

    def __str__(self) -> str:
        return f"/sax/{self.cell}/{self.model}"

    @property
    def cell_full_name(self) -> str:
        return f"/sax/{self.cell}"

    @property
    def go(self) -> str:
        return f"{{{self.cell} {self.model}}}"


def cell_name(sax_cell: str) -> str:
    """The <cell> of "/sax/<cell>"; SaxError (invalid argument) as naming.go words it."""
    parts = sax_cell.split("/")
    if len(parts) != 3 or parts[0] != "" or parts[1] != "sax":
        raise SaxError(f"cell full name {go_quote(sax_cell)} should have the form /sax/<cell name>",
                       "INVALID_ARGUMENT")
    if not _NAME.fullmatch(parts[2]):
        raise SaxError(f"cell name {go_quote(parts[2])} must match {go_quote(NAME_PATTERN)}", "INVALID_ARGUMENT")
    return parts[2]


def model_name(full_name: str) -> ModelName:
    slash = full_name.rfind("/")
    if slash < 0:
        raise SaxError(f"model full name {go_quote(full_name)} should have the form /sax/<cell name>/<model name>",
                       "INVALID_ARGUMENT")
    model = full_name[slash + 1:]
    if not _NAME.fullmatch(model):
        raise SaxError(f"model name {go_quote(model)} must match {go_quote(NAME_PATTERN)}", "INVALID_ARGUMENT")
    return ModelName(cell_name(full_name[:slash]), model)


def model_name_in_cell(full_name: str, sax_cell: str) -> ModelName:
    name = model_name(full_name)
    if name.cell_full_name != sax_cell:
        raise SaxError(f"model {full_name} must be within SAX cell {go_quote(sax_cell)}", "INVALID_ARGUMENT")
    return name


def validate_model(model, sax_cell: str) -> ModelName:
    """validator.ValidateModelProto: the id, model path, checkpoint path and replicas (ACL names are not checked)."""
    name = model_name_in_cell(model.model_id, sax_cell)
    if not _MODEL_PATH.fullmatch(model.model_path):
        raise SaxError(f"model path {go_quote(model.model_path)} must match {go_quote(MODEL_PATH_PATTERN)}",
                       "INVALID_ARGUMENT")
    if not _CHECKPOINT.fullmatch(model.checkpoint_path):
        raise SaxError(f"checkpoint path {go_quote(model.checkpoint_path)} must match {go_quote(CHECKPOINT_PATTERN)}",
                       "INVALID_ARGUMENT")
    if model.requested_num_replicas < 0:
        raise SaxError(f"number of replicas {model.requested_num_replicas} must be non-negative", "INVALID_ARGUMENT")
    return name


def validate_update(previous, change) -> None:
    """validator.ValidateModelUpdate at v1.1.0: neither the model path nor the checkpoint may change."""
    if previous.model_path != change.model_path:
        raise SaxError("invalid model update: model path can't be changed", "INVALID_ARGUMENT")
    if previous.checkpoint_path != change.checkpoint_path:
        raise SaxError("invalid model update: checkpoint path can't be changed", "INVALID_ARGUMENT")
