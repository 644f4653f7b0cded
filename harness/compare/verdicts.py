"""The words of a comparison: verdicts, methods and notes, shared by its modules."""

DEFAULT_NOISE_FLOOR = 0.05

SLOWER, FASTER = "B slower", "B faster"
NO_DIFFERENCE, WITHIN_NOISE = "no significant difference", "within run-to-run noise"

HIERARCHICAL = "hierarchical bootstrap"
WITHIN_RUN = "within-run bootstrap, noise floor"
FLOOR_ONLY = "noise floor, no CI"

METHOD = ("per side: mean over runs of the mean over repetitions of each repetition's value "
          "(LoadGen percentile sorted[floor(n*p)], median window throughput, offline samples/s); "
          "CI of (B - A) / A: with >= 2 replicates (runs or repetitions) a side, a hierarchical "
          "bootstrap (runs, then repetitions, then 20 time blocks of queries (>= 1000 queries; "
          "else queries, by Beta order statistics), percentiles exact, or windows, all with "
          "replacement), widened for few replicates (sqrt(R/(R-1)) a side, t over z with "
          "Welch-Satterthwaite df); with 1 replicate on a side, the within-run bootstrap, and a "
          "difference within the noise floor, or whose CI reaches into it, is run-to-run noise; "
          "the floor is the given one or z x sqrt(dA^2 + dB^2), whichever is larger, dX a run's "
          "drift over its time (standard deviation of its 20 time blocks' percentiles, or of its "
          "windows, over the value)")

OFFLINE_NOTE = ("one value per run (offline is one query: nothing to resample inside a run); {ci}; "
                "the query's size came from {source}")
