"""The paper-facing layer: what the kit measures, set beside what the paper says.

* :mod:`.table1` — Table 1 of Medical Chain filled from simulator measurements (with
  :mod:`.systems`, :mod:`.measure` and :mod:`.table1_text`);
* :mod:`.reproduce` — ``medbench reproduce``: Table 1, PBFT scaling, saturation and fault runs in
  one report folder;
* :mod:`.report` — the report folder's markdown, CSV and plots.
"""
