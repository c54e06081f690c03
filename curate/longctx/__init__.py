"""Long-context selection (issue 10).

- `longattn`: LongAttn document scores (DS, DU, LDS) from one attention layer of a local causal LM,
  computed in query chunks by `attention`; used by the opt-in `longattn` stage and `distillery longattn`.
- `longreps`: LongRePS checks of sampled reasoning paths (answer F1/EM, faithful quotes, an optional
  `judge`); used by the opt-in `longreps` stage.

Nothing here imports torch at module level except `attention`, so the stages cost nothing to register.
"""
