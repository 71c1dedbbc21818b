"""Rule summary: all metrics in one table, the learning curve and the final model."""

import shutil
from pathlib import Path

import matplotlib
import pandas as pd
from psiflow.rules import rule_log

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

snakemake = snakemake  # noqa: F821 (injected by Snakemake)

README = """# The final committee

`member_{{m}}.nequip.zip` are self-contained NequIP packages (eager PyTorch, any
device); `member_{{m}}.nequip.pt2`, where present, are the same models compiled
with AOTInductor for the device they were compiled on ({members} members).

```python
from nequip.integrations.ase import NequIPCalculator

atoms.calc = NequIPCalculator.from_compiled_model("member_0.nequip.pt2", device="cpu")
# or, without compilation:
atoms.calc = NequIPCalculator._from_saved_model("member_0.nequip.zip", device="cpu")
```

For the committee mean and its force deviation, as psiflow samples with it:

```python
import sys; sys.path.append("<psiflow>/scripts")
from psiflow.models import Committee

atoms.calc = Committee.from_files(["member_0.nequip.zip", "member_1.nequip.zip"])
atoms.get_forces(); atoms.calc.results["deviation"]  # eV/Å
```

For LAMMPS, compile a package with `nequip-compile --mode aotinductor --target pair_nequip`
(see the NequIP documentation).
"""

with rule_log(snakemake.log[0]) as log:
    table = pd.concat([pd.read_csv(p) for p in snakemake.input.metrics], ignore_index=True)
    table.to_csv(snakemake.output.metrics, index=False)
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for subset, label in (("valid", "validation set"), ("new", "fresh labels (previous model)")):
        part = table[table.subset == subset]
        if len(part):
            axis.plot(part.iteration, part.force_rmse, marker="o", label=label)
    axis.set_xlabel("iteration")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel("force RMSE (eV/Å)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(snakemake.output.curve, dpi=120)
    for package, copy in zip(snakemake.input.models, snakemake.output.models, strict=True):
        shutil.copy(package, copy)
    Path(snakemake.output.readme).write_text(README.format(members=len(snakemake.output.models)))
    log.info("\n%s", table.to_string())
