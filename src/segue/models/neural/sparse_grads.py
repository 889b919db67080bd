"""Averaging the embedding tables' sparse gradients across data-parallel ranks, outside DistributedDataParallel.

DDP averages the dense gradients (the layers). The tables that take sparse gradients are kept out of its reducer
and averaged here instead: every rank all-gathers the rows each rank touched (padded to the largest count, so
the collectives are plain dense ``all_gather`` calls that gloo and NCCL both implement), then sums them the
same way. Why not DDP's own sparse all-reduce: gloo's mishandles a rank whose gradient has no rows
(pytorch#87497; here a table a rank's batch did not touch, e.g. the title table in a batch without titles),
NCCL's sparse support was never tested here, and in two full test runs (one of them CI) a rank of segue's
two-process test died of SIGSEGV mid-training while its peer waited in DDP's gradient reduction (not
reproduced in 87 runs of that test alone or after the suite's first files). Here the sums are deterministic
and identical on every rank (same inputs in rank order, same coalesce), which the distributed test checks by
hashing each rank's weights.

Cost per step: one all-gather of the row counts for all tables together, then two all-gathers (rows, values)
per table of ``world x max rows`` entries -- the touched rows only, as the sparse all-reduce would send.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def sparse_parameter_names(net: nn.Module) -> list[str]:
    """Names of the parameters that take sparse gradients (the weights of sparse embedding tables), in a fixed
    order that is the same on every rank."""
    names = []
    for module_name, module in net.named_modules():
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.sparse:
            names.append(f"{module_name}.weight" if module_name else "weight")
    return names


class SparseGradientSync:
    """Averages the sparse gradients of ``net``'s sparse tables over the process group after each backward.

    Construct it before wrapping ``net`` in DDP: it marks these tables for DDP's reducer to leave alone, and
    broadcasts them from rank 0 once, as DDP does for the parameters it owns.
    """

    def __init__(self, net: nn.Module) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.world = dist.get_world_size()
        params = dict(net.named_parameters())
        self.names = sparse_parameter_names(net)
        self.params = [params[name] for name in self.names]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(net, self.names)
        with torch.no_grad():
            for param in self.params:
                dist.broadcast(param.data, src=0)

    @torch.no_grad()
    def average(self) -> None:
        """Replace every sparse table's gradient by its mean over the ranks (a table without a gradient on a
        rank takes part with no rows)."""
        if not self.params:
            return
        parts = []
        for param in self.params:
            grad = param.grad
            if grad is None:
                rows = torch.zeros(0, dtype=torch.long, device=param.device)
                values = param.new_zeros((0,) + tuple(param.shape[1:]))
            else:
                grad = grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
            parts.append((rows, values))
        device = self.params[0].device
        counts = torch.tensor([len(rows) for rows, _ in parts], dtype=torch.long, device=device)
        gathered = [torch.empty_like(counts) for _ in range(self.world)]
        dist.all_gather(gathered, counts)
        per_rank = torch.stack(gathered).cpu()                                    # (world, tables)
        for t, (param, (rows, values)) in enumerate(zip(self.params, parts)):
            sizes = per_rank[:, t].tolist()
            most = max(sizes)
            if most == 0:
                param.grad = None
                continue
            padded_rows = rows.new_zeros(most)
            padded_rows[: len(rows)] = rows
            padded_values = values.new_zeros((most,) + tuple(values.shape[1:]))
            padded_values[: len(values)] = values
            all_rows = [torch.empty_like(padded_rows) for _ in range(self.world)]
            all_values = [torch.empty_like(padded_values) for _ in range(self.world)]
            dist.all_gather(all_rows, padded_rows)
            dist.all_gather(all_values, padded_values)
            rows = torch.cat([r[:n] for r, n in zip(all_rows, sizes)])
            values = torch.cat([v[:n] for v, n in zip(all_values, sizes)]).div_(self.world)
            param.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, param.shape).coalesce()
