"""The paper's reported numbers (Ding et al., ICLR 2024, v3), drawn beside ours in every artifact."""

# Test query error: MSE for lr and nlr, error % for mc. Keys: (row, task).
TABLE1 = {
    "PrefixLM-SL": {"lr": 8.6e-3, "nlr": 1.5e-4, "mc": 24.1},
    "CausalLM-SL": {"lr": 1.9e-1, "nlr": 2.7e-3, "mc": 27.0},
    "PrefixLM-UL": {"lr": 2.5e-3, "nlr": 9.0e-5, "mc": 27.6},
    "CausalLM-UL": {"lr": 1.6e-2, "nlr": 2.9e-3, "mc": 32.1},
}
TABLE3 = {
    "PrefixLM-SL-no-L2": {"lr": 6.7e-3, "nlr": 1.5e-4, "mc": 24.5},
    "CausalLM-SL-no-L2": {"lr": 5.0e-2, "nlr": 1.9e-3, "mc": 30.5},
    "PrefixLM-UL-L2": {"lr": 7.6e-3, "nlr": 1.7e-4, "mc": 26.7},
    "CausalLM-UL-L2": {"lr": 4.4e-2, "nlr": 2.5e-3, "mc": 30.4},
}
# Tables 4-6: ICEs at test time -> row -> task.
FEWER_ICES = {
    16: {
        "PrefixLM-SL": {"lr": 1.01, "nlr": 2.1e-2, "mc": 42.8}, "CausalLM-SL": {"lr": 1.76, "nlr": 2.7e-2, "mc": 43.3},
        "PrefixLM-UL": {"lr": 0.97, "nlr": 1.9e-2, "mc": 42.9}, "CausalLM-UL": {"lr": 1.12, "nlr": 3.2e-2, "mc": 46.6},
    },
    24: {
        "PrefixLM-SL": {"lr": 1.4e-1, "nlr": 2.0e-3, "mc": 33.4}, "CausalLM-SL": {"lr": 7.0e-1, "nlr": 1.0e-2, "mc": 35.9},
        "PrefixLM-UL": {"lr": 1.0e-1, "nlr": 1.7e-3, "mc": 37.1}, "CausalLM-UL": {"lr": 1.3e-1, "nlr": 1.0e-2, "mc": 41.2},
    },
    32: {
        "PrefixLM-SL": {"lr": 2.4e-2, "nlr": 4.7e-4, "mc": 32.4}, "CausalLM-SL": {"lr": 3.1e-1, "nlr": 5.0e-3, "mc": 34.6},
        "PrefixLM-UL": {"lr": 9.5e-3, "nlr": 3.4e-4, "mc": 36.2}, "CausalLM-UL": {"lr": 4.0e-2, "nlr": 5.7e-3, "mc": 37.3},
    },
}
TABLE7 = {
    "PrefixLM-SL": {"lr": 9.0e-3, "nlr": 1.5e-4, "mc": 24.1},
    "CausalLM-SL": {"lr": 1.9e-1, "nlr": 2.5e-3, "mc": 26.9},
    "PrefixLM-UL": {"lr": 2.6e-3, "nlr": 9.5e-5, "mc": 26.1},
    "CausalLM-UL": {"lr": 1.1e-2, "nlr": 1.8e-3, "mc": 26.2},
}
# Fig. 6: training-set sizes (batches of 64) where the paper's gap is largest.
FIG6_LARGEST_GAP = {"lr": 30, "nlr": 100, "mc": 10}

# Sec. 5.1 statements about the constructed LSA (d = 16, n = 40, eta = ETA). Of prefixLM's query
# MSE the paper says only that it falls at the same linear rate as its ICE MSE: no value.
ETA = 1.6  # the construction's step in Fig. 2
CAUSAL_QUERY_FLOOR = 1e-1  # causalLM's query MSE stays above this over depth 1..50
STATIONARY_THRESHOLD = 1e-2  # at mu_x = 0, causalLM's stationary point needs over ...
STATIONARY_ICES = 100  # ... this many ICEs to fall below the threshold
STATIONARY_N_STEP = 20  # Fig. 2 right is drawn at n = 20, 40, ..., 300

# Sec. 5.3: 5-shot MMLU accuracy (%) of the large models, (prefixLM, causalLM) per size, smallest first.
LARGE_MODEL_MMLU = {
    "T5": {"Base": (28.8, 28.0), "Large": (32.0, 26.9), "XL": (39.5, 30.5)},
    "PaLM2": {"Gecko": (46.6, 43.3), "Otter": (64.8, 61.0), "Unicorn": (81.4, 78.0)},
}
