"""What TP's fast outer step (:mod:`tplib.train.chains`) may exploit in each backbone, and the switch that lets a
backbone's forward pass run under ``torch.func.vmap``. The models know nothing of TP; this table is where the
engine learns which of their parameters are row-sparse and which shortcuts keep every value unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from tplib.models.base import SeqRecModel

@dataclass(frozen=True)
class Capabilities:
    """What the fast outer step may exploit in one backbone.

    - ``sparse_tables``: the parameters (and buffers) that training only reads row by row, indexed by item id or
      user index, each with its kind (a key of ``sparse_kinds``): an inner step touches only the rows of its batch.
    - ``sparse_kinds``: for each kind of sparse table, which of a batch's index fields (``seqs``, ``pos``,
      ``neg``, ``users``) read tables of that kind, and whether row 0 (the padding item) is always among its rows.
      Every field belongs to exactly one kind; each kind gets its own local rows.
    - ``vmappable``: whether an inner step can run under ``torch.func.vmap`` over stacked parameter copies (with
      the model's ``vmap_path`` set).
    - ``trims_left_padding``: whether leading input columns that are padding in EVERY row may be dropped: φ at the
      remaining positions is then the same function (SASRec counts positions from the right and masks padded
      keys; GRU4Rec's state stays 0 over left padding; ``tests/test_models.py`` checks both).
    """

    sparse_tables: dict[str, str]
    sparse_kinds: dict[str, tuple[tuple[str, ...], bool]] = field(default_factory=lambda: {
        "item": (("seqs", "pos", "neg"), True), "user": (("users",), False)})
    vmappable: bool = True
    trims_left_padding: bool = False


#: Per backbone (``RunConfig.backbone``), what :class:`ChainEngine` may exploit.
CAPABILITIES: dict[str, Capabilities] = {
    "sasrec": Capabilities({"item_emb.weight": "item"}, trims_left_padding=True),
    "gru4rec": Capabilities({"item_emb.weight": "item"}, trims_left_padding=True),  # vmap: its functional GRU
    "caser": Capabilities(
        {"item_emb.weight": "item_in", "W2.weight": "item_out", "b2.weight": "item_out", "user_emb.weight": "user",
         "trained_users": "user"},  # a buffer: sliced alongside user_emb
        # the input embeddings are read by the windows only, the output embeddings by the targets and negatives
        # only: each gets its own rows (a user's windows slide over one sequence, so they touch few input items)
        {"item_in": (("seqs",), True), "item_out": (("pos", "neg"), True), "user": (("users",), False)},
    ),
}


@contextlib.contextmanager
def vmap_path(model: SeqRecModel) -> Iterator[None]:
    """Forward passes inside this block may run under ``torch.func.vmap``: the model's ``vmap_path`` is set, and a
    backbone whose ordinary path has no vmap batching rule, or a slow one, computes the same function with other
    ops (GRU4Rec: a functional GRU; Caser: convolutions as matmuls; SASRec has none)."""
    prev = model.vmap_path
    model.vmap_path = True
    try:
        yield
    finally:
        model.vmap_path = prev
