// The tile table of the persistent grouped products (variants 2, 3 and 5; moe_mma.cu,
// moe_wgmma.cu, moe_wgmma_ws.cu): written once here.
//
// Rows are sorted by expert (sortedExpert ascending, M of them). Each block builds, in shared
// memory, rowEnd[e] (the end of expert e's rows: one binary search per expert) and tileStart[e]
// (the BM-row tiles of the experts before e; tileStart[E] is the number of row tiles), then maps a
// linear tile index t over (row tile, column tile) to (expert, first row, rows, first column). The
// order is grouped by MM_GROUP_M row tiles so the blocks running at once share their A rows and
// weight tiles in L2. Included by moe_mma.cu after MM_GROUP_M is defined.

struct MoeTile {
  int e;       // expert
  int rStart;  // first row (position in the sorted order)
  int rows;    // rows of this tile (<= BM)
  int n0;      // first output column
};

// Every thread of the block calls it (two __syncthreads inside). tileStart: E + 1 ints, rowEnd:
// E ints, both in shared memory.
template <int BM>
__device__ __forceinline__ void moe_build_tiles(const int* sortedExpert, int M, int E,
                                                int* tileStart, int* rowEnd) {
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int lo = 0, hi = M;  // first p with sortedExpert[p] > e
    while (lo < hi) {
      int mid = (lo + hi) >> 1;
      if (sortedExpert[mid] <= e) lo = mid + 1; else hi = mid;
    }
    rowEnd[e] = lo;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int t = 0, start = 0;
    tileStart[0] = 0;
    for (int e = 0; e < E; e++) {
      t += (rowEnd[e] - start + BM - 1) / BM;
      tileStart[e + 1] = t;
      start = rowEnd[e];
    }
  }
  __syncthreads();
}

// Tile t of rowTiles x nTiles (t < rowTiles * nTiles).
template <int BM, int BN>
__device__ __forceinline__ MoeTile moe_tile(long long t, const int* tileStart, const int* rowEnd,
                                            int E, int rowTiles, int nTiles) {
  long long perGroup = (long long)MM_GROUP_M * nTiles;
  int first = (int)(t / perGroup) * MM_GROUP_M;
  int size = min(rowTiles - first, MM_GROUP_M);
  int within = (int)(t % perGroup);
  int rt = first + within % size, nt = within / size;
  int lo = 0, hi = E;  // the expert e with tileStart[e] <= rt < tileStart[e + 1]
  while (lo < hi) {
    int mid = (lo + hi) >> 1;
    if (tileStart[mid + 1] <= rt) lo = mid + 1; else hi = mid;
  }
  MoeTile w;
  w.e = lo;
  w.rStart = (lo == 0 ? 0 : rowEnd[lo - 1]) + (rt - tileStart[lo]) * BM;
  w.rows = min(rowEnd[lo] - w.rStart, BM);
  w.n0 = nt * BN;
  return w;
}
