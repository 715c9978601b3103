"""Image restoration data: paired on-disk layouts, paired transforms, the embedded haze set.

Every item is a dict ``{"input": float CHW in [0, 1], "target": float CHW in [0, 1],
"name": str}`` (the embedded set adds ``"domain"``, a LongTensor index into
``dataset.domains``). Importing this package registers the datasets "nh_haze", "reside",
"paired_folder" and "embedded_haze".
"""
