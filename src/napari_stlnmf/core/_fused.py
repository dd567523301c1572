"""The KL layer of STL NMF fused into one pass over a spot's nonzeros (CPU inference).

torch computes a KL update as an SDDMM (``B u`` at the nonzeros), a CSR x dense product
and ~30 slide-sized element-wise ops, each a separate sweep through memory, and on a busy
machine its OpenMP pool spin-waits at every one of them. Here a compiled (numba) kernel
updates one row at a time: it reads the row's counts once, keeps its ``k`` fitted values
and sums in registers, and writes only the new row. Rows are cut into chunks that a pool
of Python threads pulls one at a time (the kernel releases the GIL), so a core taken by
another process slows only its own chunks: the other threads take more of them, and idle
threads sleep instead of spinning. There are three threads per CPU (:func:`worker_count`):
the scheduler shares a busy core between the threads that want it, so more threads keep a
larger share of the machine.

The arithmetic is :func:`~napari_stlnmf.core.network._update` with the majorise-minimise
factor :func:`~napari_stlnmf.core.data_terms.mm_factor` and the normalisation of
:func:`~napari_stlnmf.core.network._normalise`, in float32 as there; the torch path stays
the reference (``tests/core/test_fused.py`` compares them) and serves autograd, CUDA, the
Frobenius term and the paper's ratio rule.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

try:  # numba is a dependency, but the torch path must keep working without it
    import numba

    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba cannot be installed
    numba = None
    _HAVE_NUMBA = False

__all__ = ["available", "FusedKL", "fused_for", "run_updates", "worker_count"]

_EPS = 1e-10  # data_terms._EPS
_FLOOR = 1e-8  # network._FLOOR
#: Rows per chunk a thread takes at a time: small enough that a slow core's last chunk
#: costs little, large enough that scheduling a chunk (~20 us) is noise.
CHUNK_ROWS = 2048
#: Set to "0" to turn the fused path off (the torch path then runs everywhere).
ENV_SWITCH = "STLNMF_FUSED"


def available() -> bool:
    """Whether the fused CPU kernel can run here (numba importable, not switched off)."""
    return _HAVE_NUMBA and os.environ.get(ENV_SWITCH, "1") != "0"


#: Threads per CPU: with ``n`` of our threads and one busy process on ``c`` cores, the
#: scheduler gives us ``c n / (n + 1)`` cores, so more threads than cores keep a busy core
#: from halving a core's worth of work (measured in docs/benchmarks.md: 650k bins, one
#: update, busy / quiet 1.54x with 2 threads on 2 cores, 1.07x with 6, 3 % slower quiet).
THREADS_PER_CPU = 3
#: Set to an integer to fix the number of threads (e.g. 1 on a shared cluster node).
ENV_THREADS = "STLNMF_THREADS"


def worker_count() -> int:
    """Threads for the fused kernel: ``STLNMF_THREADS`` when set, else
    :data:`THREADS_PER_CPU` per CPU this process may run on (at most 64)."""
    env = os.environ.get(ENV_THREADS, "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(64, THREADS_PER_CPU * n))


if _HAVE_NUMBA:

    @numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
    def _kl_rows(
        lo,
        hi,
        crow,
        col,
        vals,
        sig_cat,
        sig_sum,
        inv_t,
        has,
        u,
        g_crow,
        g_col,
        g_w,
        deg,
        gw,
        lam1,
        lam2,
        lam3,
        k,
        out,
    ):  # pragma: no cover - compiled; covered through run_updates
        # the data loops run over kp >= k padded columns (zero in sig and u): a multiple of
        # 8 lets them compile to whole vectors, 2x faster than k = 15 with its scalar tail
        kp = u.shape[1]
        y_eps = np.float32(_EPS)
        eps2 = np.float32(_EPS * _EPS)
        zero = np.float32(0.0)
        c = np.empty(kp, dtype=np.float32)
        au = np.empty(k, dtype=np.float32)
        for s in range(lo, hi):
            for t in range(kp):
                c[t] = zero
            for t in range(k):
                au[t] = zero
            # data term: c = sum_g x_sg / (B u_s)_g * (w_g B_g), over the row's nonzeros
            for nz in range(crow[s], crow[s + 1]):
                g = col[nz]
                y = zero
                for t in range(kp):
                    y += u[s, t] * sig_cat[g, t]
                if y < y_eps:
                    y = y_eps
                r = vals[nz] / y
                for t in range(kp):
                    c[t] += r * sig_cat[g, kp + t]
            # graph coupling A u of the previous iterate (Jacobi: u is not written here)
            for e in range(g_crow[s], g_crow[s + 1]):
                j = g_col[e]
                w = g_w[e]
                for t in range(k):
                    au[t] += w * u[j, t]
            mass = zero
            total = zero
            for t in range(k):
                mass += u[s, t] * sig_sum[t]
                total += u[s, t]
            if mass < y_eps:
                mass = y_eps
            b_scale = has[s] / mass
            ds = lam1 * deg[s]
            new_sum = zero
            for t in range(k):
                ust = u[s, t]
                a = ds * ust + lam2 * total + lam3 * gw[s, t] * ust
                c_log = c[t] * inv_t[s] + lam1 * au[t]
                beta = sig_sum[t] * b_scale - lam2
                root = np.sqrt(beta * beta + np.float32(4.0) * a * c_log + eps2)
                if beta >= zero:
                    den = beta + root
                    if den < y_eps:
                        den = y_eps
                    f = np.float32(2.0) * c_log / den
                else:
                    den = np.float32(2.0) * a
                    if den < y_eps:
                        den = y_eps
                    f = (root - beta) / den
                v = ust * f
                out[s, t] = v
                new_sum += v
            if new_sum < np.float32(1e-30):
                new_sum = np.float32(1e-30)
            for t in range(k):
                v = out[s, t] / new_sum
                out[s, t] = v if v > np.float32(_FLOOR) else np.float32(_FLOOR)


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="stlnmf-fused")
            _pool_size = n
        return _pool


class FusedKL:
    """A KL data term's arrays as float32/int32 numpy views for the kernel.

    Parameters
    ----------
    crow, col, vals : arrays
        The spots' counts in CSR form.
    sig, weights, totals : arrays
        ``(n, k)`` signatures, ``(n,)`` gene weights, ``(m,)`` weighted spot totals.
    """

    def __init__(self, crow, col, vals, sig, weights, totals):
        sig = np.asarray(sig, dtype=np.float32)
        sig_w = sig * np.asarray(weights, np.float32)[:, None]
        self.sig_sum = np.ascontiguousarray(sig_w.sum(0), dtype=np.float32)
        col = np.asarray(col)
        # genes renumbered by how many spots hold them, most frequent first: the rows of
        # the signatures the kernel gathers then crowd into few cache lines for the genes
        # that make most of the nonzeros (the gene order does not change a row's sums)
        freq = np.bincount(col, minlength=sig.shape[0])
        order = np.argsort(-freq, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        self.crow = np.ascontiguousarray(crow, dtype=np.int64)
        self.col = rank[col].astype(np.int32)
        self.vals = np.ascontiguousarray(vals, dtype=np.float32)
        k = sig.shape[1]
        self.n_padded = -(-k // 8) * 8
        pad = ((0, 0), (0, self.n_padded - k))
        # a gene's signature and weighted signature side by side: the two rows the kernel
        # gathers per nonzero share cache lines (10 % faster than two arrays)
        self.sig_cat = np.ascontiguousarray(
            np.hstack([np.pad(sig[order], pad), np.pad(sig_w[order], pad)])
        )
        totals = np.asarray(totals, dtype=np.float32)
        safe = np.where(totals > 0, totals, 1.0).astype(np.float32)
        self.inv_t = np.where(totals > 0, 1.0 / safe, 0.0).astype(np.float32)
        self.has = (totals > 0).astype(np.float32)
        self.n_spots = int(self.crow.shape[0] - 1)
        self.n_types = int(k)


def run_updates(
    fused: FusedKL,
    u: np.ndarray,
    n_iter: int,
    graph: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    deg: np.ndarray | None = None,
    group_weights: np.ndarray | None = None,
    lambdas: tuple[float, float, float] = (0.0, 0.0, 0.0),
    threads: int | None = None,
    callback=None,
) -> np.ndarray:
    """``n_iter`` normalised multiplicative updates of the rows ``u`` (m, k), float32.

    Parameters
    ----------
    fused : FusedKL
    u : (m, k) array
        Starting rows (not modified).
    n_iter : int
    graph : (crow, col, weights) of the weighted adjacency, optional
        None (with ``lambdas`` zero) gives the plain data-term updates of the warm start.
    deg : (m,) weighted degrees; group_weights : (m, k) ``omega^2`` of each spot's region
    lambdas : lambda1, lambda2, lambda3
    threads : int, optional
        Worker threads (default :func:`worker_count`).
    callback : callable(i), optional
        Called after every update (once, at the end, for the plain updates).

    Returns
    -------
    (m, k) float32 array of rows summing to 1.
    """
    m, k = u.shape
    # padded columns stay zero in both buffers: the kernel writes only the first k
    cur = np.zeros((m, fused.n_padded), dtype=np.float32)
    cur[:, :k] = u
    nxt = np.zeros_like(cur)
    if graph is None:
        g_crow = np.zeros(m + 1, dtype=np.int64)
        g_col = np.zeros(0, dtype=np.int32)
        g_w = np.zeros(0, dtype=np.float32)
    else:
        g_crow = np.ascontiguousarray(graph[0], dtype=np.int64)
        g_col = np.ascontiguousarray(graph[1], dtype=np.int32)
        g_w = np.ascontiguousarray(graph[2], dtype=np.float32)
    deg = np.zeros(m, np.float32) if deg is None else np.ascontiguousarray(deg, np.float32)
    if group_weights is None:
        gw = np.zeros((m, k), np.float32)
    else:
        gw = np.ascontiguousarray(np.broadcast_to(group_weights, (m, k)), dtype=np.float32)
    lam1, lam2, lam3 = (np.float32(v) for v in lambdas)
    n_threads = worker_count() if threads is None else max(1, int(threads))
    # at least ~4 chunks per thread, so that a thread slowed by a busy core hands work over
    rows = max(128, min(CHUNK_ROWS, -(-m // (4 * n_threads))))
    chunks = [(s, min(s + rows, m)) for s in range(0, m, rows)]
    pool = _executor(n_threads) if n_threads > 1 and len(chunks) > 1 else None

    def one(lo, hi, src, dst):
        return _kl_rows(
            lo,
            hi,
            fused.crow,
            fused.col,
            fused.vals,
            fused.sig_cat,
            fused.sig_sum,
            fused.inv_t,
            fused.has,
            src,
            g_crow,
            g_col,
            g_w,
            deg,
            gw,
            lam1,
            lam2,
            lam3,
            k,
            dst,
        )

    def run(tasks, fn):
        if pool is None:
            return [fn(ch) for ch in tasks]
        return list(pool.map(fn, tasks))  # waits, and re-raises a worker's exception

    if graph is None:
        # no coupling between rows: each chunk runs all its updates at once, while its
        # rows and counts sit in cache (a stop on small changes was measured: on 200-UMI
        # bins some row of every chunk still moves by 1e-4 after 100 updates)
        def chunk_all(ch):
            lo, hi = ch
            src, dst = cur, nxt
            for _ in range(n_iter):
                one(lo, hi, src, dst)
                src, dst = dst, src
            if src is not cur:
                cur[lo:hi] = src[lo:hi]

        run(chunks, chunk_all)
        if callback is not None:
            callback(n_iter - 1)
        return np.ascontiguousarray(cur[:, :k])

    for i in range(n_iter):
        run(chunks, lambda ch, a=cur, b=nxt: one(ch[0], ch[1], a, b))
        cur, nxt = nxt, cur
        if callback is not None:
            callback(i)
    return np.ascontiguousarray(cur[:, :k])


def fused_for(data) -> FusedKL | None:
    """The :class:`FusedKL` of a KL data term on the CPU in float32 (built once and kept
    on the term), or None where the fused kernel does not apply: numba missing or switched
    off, another data term, another device or dtype."""
    from .data_terms import DenseKLData, KLData

    if not available() or not isinstance(data, (KLData, DenseKLData)):
        return None
    sig = data.sig
    if sig.device.type != "cpu" or sig.dtype != torch.float32:
        return None
    cached = getattr(data, "_fused_cache", None)
    if cached is not None:
        return cached
    if isinstance(data, KLData):
        crow = data.crow.numpy()
        col = data.col.numpy()
        vals = data.vals.numpy()
    else:
        import scipy.sparse as sp

        x = sp.csr_matrix(data.x.numpy())
        crow, col, vals = x.indptr, x.indices, x.data
    fused = FusedKL(crow, col, vals, sig.numpy(), data.weights.numpy(), data.totals.numpy())
    data._fused_cache = fused
    return fused
