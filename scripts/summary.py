"""Rule summary: metrics, learning curves, parity plot, deviation histograms, the
walker table, provenance and the final committee, under results/summary/."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from psiflow.data import read_h5
from psiflow.report import deviation_histograms, learning_curves, parity, provenance, walker_table
from psiflow.rules import rule_log

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
    metrics = pd.concat([pd.read_csv(p) for p in snakemake.input.metrics], ignore_index=True)
    labels = {i: len(read_h5(p)) for i, p in enumerate(snakemake.input.datasets)}
    metrics.insert(3, "labels", metrics.iteration.map(labels))
    metrics.to_csv(snakemake.output.metrics, index=False)
    learning_curves(metrics, labels, snakemake.output.curve)
    with np.load(snakemake.input.parity) as data:
        parity(dict(data), snakemake.output.parity, len(snakemake.input.metrics) - 1)
    p = snakemake.params
    deviation_histograms(snakemake.input.candidates, p.trust_lo, p.trust_hi, snakemake.output.deviations)
    walker_table(snakemake.input.candidates).to_csv(snakemake.output.walkers, index=False)
    Path(snakemake.output.provenance).write_text(
        yaml.safe_dump(provenance(dict(p.config), p.repository), sort_keys=False)
    )
    for package, copy in zip(snakemake.input.models, snakemake.output.models, strict=True):
        shutil.copy(package, copy)
    Path(snakemake.output.readme).write_text(README.format(members=len(snakemake.output.models)))
    log.info("\n%s", metrics.to_string())
