"""The recipe file: its keys, how paths and `{out}` resolve, and the checks made before any work.

Every check that can fail on a recipe the user wrote runs here, at load or planning time, so a
typo fails in a second rather than after an hour of training. Unknown keys are refused everywhere
with one message (`unknown_keys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.errors import read_yaml

RECIPE_KEYS = (
    "name",
    "threads",
    "parallel",
    "corpus",
    "generate",
    "inputs",
    "curate",
    "base",
    "domains",
    "sft",
    "redi",
    "joint",
    "merge",
    "eval",
    "variants",
    "launch",
)
# The keys of each section the recipe itself reads (curate and merge check their own configs).
SECTION_KEYS = {
    "sft": ("config", "defaults", "domains", "replay"),
    "redi": ("domains", "pairs", "defaults"),
    "base": ("path", "tiny", "pretrain", "pretrain_share"),
    "generate": (
        "teacher",
        "prompts",
        "sampling",
        "style",
        "backend",
        "backend_options",
        "budget",
        "workers",
    ),
    "eval": ("benches", "sampling", "backend", "backend_options", "style", "limit", "workers", "data_dir"),
}
# Step groups in run order, for --from.
GROUPS = ("corpus", "generate", "curate", "base", "students", "redi", "joint", "merge", "eval")


class RecipeError(Exception):
    """A recipe the user must fix: a missing key, a bad path, an unknown domain."""

    user_error = True


def unknown_keys(given: Any, known: tuple[str, ...], where: str) -> None:
    """Refuse keys of mapping `given` that are not in `known` (`where`: "recipe", "sft", ...)."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise RecipeError(f"unknown {where} key(s) {unknown}; known: {sorted(known)}")


def substitute(value: Any, out: str) -> Any:
    """`value` with every `{out}` in its strings replaced by the output folder."""
    if isinstance(value, str):
        return value.replace("{out}", out)
    if isinstance(value, dict):
        return {k: substitute(v, out) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, out) for v in value]
    return value


@dataclass
class Recipe:
    """A parsed recipe: the raw mapping with `{out}` substituted, its output folder and the folder
    relative paths are taken from (the recipe file's)."""

    values: dict[str, Any]
    out: Path
    folder: Path

    @classmethod
    def load(cls, source: str | Path | dict[str, Any], out: str | Path | None = None) -> Recipe:
        if isinstance(source, dict):
            values, folder, default_out = dict(source), Path.cwd(), "run_out"
        else:
            path = Path(source)
            values = read_yaml(path, "recipe", RecipeError)
            if not isinstance(values, dict):
                raise RecipeError(f"{path}: a recipe is a mapping of steps")
            folder, default_out = path.resolve().parent, f"runs/{path.stem}"
        unknown_keys(values, RECIPE_KEYS, "recipe")
        if "base" not in values:
            raise RecipeError("the recipe names no `base` model (base: {path: ...} or base: {tiny: {...}})")
        if not values.get("inputs") and not {"corpus", "generate"} & set(values):
            raise RecipeError(
                "the recipe names no `inputs` (trace files), no `generate` step and no `corpus`"
            )
        out_dir = Path(out or default_out).resolve()
        return cls(substitute(values, str(out_dir)), out_dir, folder)

    def path(self, text: str) -> Path:
        """A path from the recipe; a relative one is taken from the recipe's folder."""
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.folder / path

    def section(self, key: str) -> dict[str, Any]:
        """The mapping under `key` (empty when absent), its keys checked when the recipe reads them."""
        value = self.values.get(key) or {}
        if not isinstance(value, dict):
            raise RecipeError(f"`{key}` must be a mapping, not {type(value).__name__}")
        if key in SECTION_KEYS:
            unknown_keys(value, SECTION_KEYS[key], key)
        return value

    def sampling(self, key: str):
        """The SamplingParams of section `key` (generate, eval)."""
        import dataclasses

        from distill.generate.base import SamplingParams

        values = self.section(key).get("sampling") or {}
        if not isinstance(values, dict):
            raise RecipeError(f"`{key}.sampling` must be a mapping, not {type(values).__name__}")
        unknown_keys(values, tuple(f.name for f in dataclasses.fields(SamplingParams)), f"{key}.sampling")
        return SamplingParams(**values)

    @property
    def workspace(self) -> Path:
        """The curate workspace of the run."""
        return self.out / "workspace"

    @property
    def domains(self) -> list[str]:
        domains = self.values.get("domains")
        if not domains:
            # Not known before curation: the student steps are planned from the recipe, so ask for them.
            raise RecipeError("the recipe must list its `domains` (e.g. domains: [math, code, science])")
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise RecipeError(f"`domains` must be a list of names, not {domains!r}")
        return list(domains)

    def base(self) -> dict[str, Any]:
        """The `base` section, checked: a model folder (`path`) or a tiny model built here (`tiny`)."""
        spec = self.values.get("base")
        if not isinstance(spec, dict) or ("path" not in spec and "tiny" not in spec):
            raise RecipeError("`base` needs `path` (a model folder) or `tiny` (a model built here)")
        spec = self.section("base")
        share = spec.get("pretrain_share", 1.0)
        if not isinstance(share, int | float) or not 0.0 < share <= 1.0:
            raise RecipeError(f"base.pretrain_share must be a number in (0, 1], not {share!r}")
        return spec

    @property
    def base_model(self) -> Path:
        """The folder of the base model every student starts from."""
        spec = self.base()
        if "path" in spec:
            return self.path(spec["path"])
        return self.out / "base" / ("model" if spec.get("pretrain") else "init")

    def sft(self) -> dict[str, Any]:
        """The `sft` section, checked."""
        sft = self.section("sft")
        replay = sft.get("replay", 0.0)
        if not isinstance(replay, int | float) or not 0.0 <= replay <= 1.0:
            raise RecipeError(f"sft.replay must be a number in [0, 1], not {replay!r}")
        return sft

    def student_settings(self, domain: str) -> dict[str, Any]:
        """A student's SFT settings: the `sft.config` file, then `sft.defaults`, then the file's
        `domain_epochs` for this domain, then `sft.domains.<domain>`."""
        sft = self.sft()
        values = self._sft_file(sft)
        values.update(sft.get("defaults") or {})
        own = (sft.get("domains") or {}).get(domain) or {}
        per_domain = values.get("domain_epochs") or {}
        if domain in per_domain and "epochs" not in own:
            values["epochs"] = per_domain[domain]
        values.update(own)
        check_sft(values, f"sft settings for {domain}")  # fail at planning time, not after an hour
        if values.get("mix") and not sft.get("replay"):
            raise RecipeError(
                f"sft settings for {domain}: mix reweights the domains of mixed data, and without sft.replay "
                "the student trains on its own domain alone; set sft.replay, or give mix to the joint baseline"
            )
        return self.launched(values, f"sft settings for {domain}")

    def redi_domains(self) -> list[str]:
        """The domains whose students get a REDI step (`redi.domains`, default all); none without
        `redi` or with `redi: null` (a variant's way to turn it off)."""
        if self.values.get("redi") is None:
            return []
        domains = self.section("redi").get("domains") or self.domains
        unknown = [d for d in domains if d not in self.domains]
        if unknown:
            raise RecipeError(f"redi.domains: {unknown} not in the recipe's domains {self.domains}")
        return list(domains)

    def redi_pairs(self) -> dict[str, Any]:
        """`redi.pairs`: the pairing rule's options (curate.preferences.PairRule)."""
        from curate.preferences import PairRule

        pairs = self.section("redi").get("pairs") or {}
        unknown_keys(pairs, tuple(PairRule.__dataclass_fields__), "redi.pairs")
        return dict(pairs)

    def redi_settings(self, domain: str) -> dict[str, Any]:
        """A REDI step's SFT settings: the student's, then REDI's defaults (lr a tenth of the
        student's: distill/recipe/steps/redi.py), then `redi.defaults`."""
        from distill.recipe.steps.redi import LR_SCALE, REDI_DEFAULTS

        values = self.student_settings(domain)
        values.pop("mix", None)  # a replaying student's DDK weights: REDI trains on the domain's pairs alone
        values.update(REDI_DEFAULTS, lr=check_sft(values, f"sft settings for {domain}").lr * LR_SCALE)
        values.update(self.section("redi").get("defaults") or {})
        check_sft(values, f"redi settings for {domain}")
        return values

    def joint_settings(self) -> dict[str, Any]:
        """The joint baseline's SFT settings: the `sft.config` file, `sft.defaults`, then `joint`."""
        sft = self.sft()
        values = self._sft_file(sft)
        values.update(sft.get("defaults") or {})
        joint = self.values.get("joint")
        values.update(joint if isinstance(joint, dict) else {})
        check_sft(values, "joint sft settings")
        return self.launched(values, "joint sft settings")

    def launch(self):
        """The `launch:` block (a distill.recipe.launch.Launch), None when SFT steps train in-process."""
        from distill.recipe.launch import parse

        launch = parse(self.values.get("launch"), self.values.get("threads"))
        parallel = self.values.get("parallel") or 1
        if launch is not None and parallel != 1:
            raise RecipeError(
                f"parallel: {parallel} with a launch: block: each launched step starts its own "
                f"{launch.world} training processes on the devices, so steps side by side would share them; "
                "drop `parallel` (or set it to 1)"
            )
        return launch

    def launched(self, values: dict[str, Any], source: str) -> dict[str, Any]:
        """SFT settings as the launched processes train them: the rows per step fixed as global_batch
        (grad_accum counts per rank: x the world size), refused here when it does not divide."""
        launch = self.launch()
        if launch is None or launch.world == 1:
            return values
        from distill.sft.config import ConfigError

        config = check_sft(values, source)
        if config.global_batch is None:
            values = {**values, "global_batch": config.grad_accum * launch.world}
        try:
            config.accumulation(launch.world)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error} (the launch block starts {launch.world})") from None
        return values

    def _sft_file(self, sft: dict[str, Any]) -> dict[str, Any]:
        if not sft.get("config"):
            return {}
        from distill.sft.config import SFTConfig

        return SFTConfig.from_yaml(self.path(sft["config"])).to_dict()


def check_sft(values: dict[str, Any], source: str):
    """The SFTConfig of `values` (raises the SFT config's own user error when they are bad)."""
    from distill.sft.config import SFTConfig

    return SFTConfig.from_dict(values, source=source)
