"""QMF Studio: quality-aware multimodal fusion, made visible."""

import os as _os

__version__ = "0.1.0"

# One BLAS thread for numpy, set before numpy is first imported (OpenBLAS reads it when it loads),
# unless the user chose otherwise. numpy's matrix products here are small (the log-mel filterbank's
# 40x129x63 is just above OpenBLAS's threading threshold): a second thread gains nothing on an idle
# machine and makes each product wait for a core on a busy one, as onnxruntime's threads did (issue 13;
# inference threads: app/qmf/onnx_graph.py); not starting the pool also shortens start-up. torch's
# own threads (training) are not affected: torch does not use OpenBLAS.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
