#include "kernels/fast/top_k.h"

#include "kernels/fast/zero.h"


namespace tflm_train {
namespace kernels {
namespace fast {
namespace {

// |v| as an unsigned integer that orders like the magnitude: the float's bits
// without the sign (finite values only; +0 and -0 are both 0).
inline uint32_t Key(float v) { return FloatBits(v) & 0x7FFFFFFFu; }

// The smallest key of a nonzero value (the smallest subnormal).
constexpr uint32_t kSmallestNonzeroKey = 1;

// Step 2's test of one row with bits b: below lo (lo2 = lo << 1, compared with
// b << 1 so that the sign drops out without a separate instruction) it is not
// listed; above hi it is kept; else it is a candidate (~row, and its key).
inline void List(uint32_t b, int32_t i, uint32_t lo2, uint32_t hi, int32_t** out, uint32_t** cand) {
  if ((b << 1) < lo2) return;
  const uint32_t m = b & 0x7FFFFFFFu;
  if (m > hi) {
    *(*out)++ = i;
  } else {
    *(*out)++ = ~i;
    *(*cand)++ = m;
  }
}

// Thumb-2 (Cortex-M) inline assembly for the two passes over long lists; GCC's
// code for them spends register moves on every entry.
#if defined(__GNUC__) && defined(__thumb2__)
#define TFLM_TRAIN_TOP_K_ASM 1

// Step 2 for rows [0, n32), n32 a positive multiple of 32, as List does it:
// an LDM of four rows eight times per 32 (its registers are named so that the
// list ascends; 32 rows a loop, for 11 instructions of loads and loop per 32);
// a row below lo costs a compare and a taken branch, a row above hi four more
// instructions, a candidate (out of line) a few more.
void ListBlocks(const float* values, int n32, uint32_t lo2, uint32_t hi2, int32_t** out, uint32_t** cand) {
  const float* p = values;
  const float* const end = values + n32;
  int32_t* o = *out;
  uint32_t* c = *cand;
  int32_t ni = ~0;  // ~i for the loop's first row i: rows and marks both come from it
  register uint32_t v0 __asm__("r4");
  register uint32_t v1 __asm__("r5");
  register uint32_t v2 __asm__("r6");
  register uint32_t v3 __asm__("r8");
#define TFLM_TRAIN_LIST_ROW(V, J, INDEX)          \
  "cmp %[lo2], %[" V "], lsl #1\n\t"             \
  "bhi 1" J "1f\n\t"                              \
  "cmp %[hi2], %[" V "], lsl #1\n\t"             \
  "bcs 1" J "0f\n\t"                              \
  INDEX                                           \
  "1" J "1:\n\t"
// The row index i + J = (J - 1) - ~i to the list (for J = 0, ~~i).
#define TFLM_TRAIN_LIST_KEEP(V, J) "rsb %[" V "], %[ni], #" J "-1\n\t" "str %[" V "], [%[o]], #4\n\t"
#define TFLM_TRAIN_LIST_KEEP0 "mvn %[v0], %[ni]\n\t" "str %[v0], [%[o]], #4\n\t"
#define TFLM_TRAIN_LIST_CANDIDATE(V, J, MARK)     \
  "1" J "0:\n\t"                                  \
  "bic %[" V "], %[" V "], #0x80000000\n\t"      \
  "str %[" V "], [%[c]], #4\n\t"                 \
  MARK                                            \
  "str %[" V "], [%[o]], #4\n\t"                 \
  "b 1" J "1b\n\t"
// The mark ~(i + J) = ~i - J into V (for J = 0, ~i itself).
#define TFLM_TRAIN_LIST_MARK(V, J) "sub %[" V "], %[ni], #" J "\n\t"
#define TFLM_TRAIN_LIST_MARK0 "mov %[v0], %[ni]\n\t"
// Rows i + J0 .. i + J3 (J0 > 0): their load, tests and keeps; their candidates.
#define TFLM_TRAIN_LIST_FOUR(J0, J1, J2, J3)                        \
  "ldm %[p]!, {%[v0], %[v1], %[v2], %[v3]}\n\t"                    \
  TFLM_TRAIN_LIST_ROW("v0", J0, TFLM_TRAIN_LIST_KEEP("v0", J0))     \
  TFLM_TRAIN_LIST_ROW("v1", J1, TFLM_TRAIN_LIST_KEEP("v1", J1))     \
  TFLM_TRAIN_LIST_ROW("v2", J2, TFLM_TRAIN_LIST_KEEP("v2", J2))     \
  TFLM_TRAIN_LIST_ROW("v3", J3, TFLM_TRAIN_LIST_KEEP("v3", J3))
#define TFLM_TRAIN_LIST_CANDIDATES(J0, J1, J2, J3)                      \
  TFLM_TRAIN_LIST_CANDIDATE("v0", J0, TFLM_TRAIN_LIST_MARK("v0", J0))   \
  TFLM_TRAIN_LIST_CANDIDATE("v1", J1, TFLM_TRAIN_LIST_MARK("v1", J1))   \
  TFLM_TRAIN_LIST_CANDIDATE("v2", J2, TFLM_TRAIN_LIST_MARK("v2", J2))   \
  TFLM_TRAIN_LIST_CANDIDATE("v3", J3, TFLM_TRAIN_LIST_MARK("v3", J3))
  __asm__ volatile(
      "0:\n\t"
      "ldm %[p]!, {%[v0], %[v1], %[v2], %[v3]}\n\t"
      TFLM_TRAIN_LIST_ROW("v0", "0", TFLM_TRAIN_LIST_KEEP0)
      TFLM_TRAIN_LIST_ROW("v1", "1", TFLM_TRAIN_LIST_KEEP("v1", "1"))
      TFLM_TRAIN_LIST_ROW("v2", "2", TFLM_TRAIN_LIST_KEEP("v2", "2"))
      TFLM_TRAIN_LIST_ROW("v3", "3", TFLM_TRAIN_LIST_KEEP("v3", "3"))
      TFLM_TRAIN_LIST_FOUR("4", "5", "6", "7")
      TFLM_TRAIN_LIST_FOUR("8", "9", "10", "11")
      TFLM_TRAIN_LIST_FOUR("12", "13", "14", "15")
      TFLM_TRAIN_LIST_FOUR("16", "17", "18", "19")
      TFLM_TRAIN_LIST_FOUR("20", "21", "22", "23")
      TFLM_TRAIN_LIST_FOUR("24", "25", "26", "27")
      TFLM_TRAIN_LIST_FOUR("28", "29", "30", "31")
      "subs %[ni], %[ni], #32\n\t"
      "cmp %[p], %[end]\n\t"
      "bne 0b\n\t"
      "b 9f\n\t"
      TFLM_TRAIN_LIST_CANDIDATE("v0", "0", TFLM_TRAIN_LIST_MARK0)
      TFLM_TRAIN_LIST_CANDIDATE("v1", "1", TFLM_TRAIN_LIST_MARK("v1", "1"))
      TFLM_TRAIN_LIST_CANDIDATE("v2", "2", TFLM_TRAIN_LIST_MARK("v2", "2"))
      TFLM_TRAIN_LIST_CANDIDATE("v3", "3", TFLM_TRAIN_LIST_MARK("v3", "3"))
      TFLM_TRAIN_LIST_CANDIDATES("4", "5", "6", "7")
      TFLM_TRAIN_LIST_CANDIDATES("8", "9", "10", "11")
      TFLM_TRAIN_LIST_CANDIDATES("12", "13", "14", "15")
      TFLM_TRAIN_LIST_CANDIDATES("16", "17", "18", "19")
      TFLM_TRAIN_LIST_CANDIDATES("20", "21", "22", "23")
      TFLM_TRAIN_LIST_CANDIDATES("24", "25", "26", "27")
      TFLM_TRAIN_LIST_CANDIDATES("28", "29", "30", "31")
      "9:\n\t"
      : [p] "+r"(p), [o] "+r"(o), [c] "+r"(c), [ni] "+r"(ni), [v0] "=&r"(v0), [v1] "=&r"(v1), [v2] "=&r"(v2),
        [v3] "=&r"(v3)
      : [end] "r"(end), [lo2] "r"(lo2), [hi2] "r"(hi2)
      : "cc", "memory");
#undef TFLM_TRAIN_LIST_ROW
#undef TFLM_TRAIN_LIST_KEEP
#undef TFLM_TRAIN_LIST_KEEP0
#undef TFLM_TRAIN_LIST_CANDIDATE
#undef TFLM_TRAIN_LIST_MARK
#undef TFLM_TRAIN_LIST_MARK0
#undef TFLM_TRAIN_LIST_FOUR
#undef TFLM_TRAIN_LIST_CANDIDATES
  *out = o;
  *cand = c;
}

// Step 4's loop (see ListRows) from rows[0]: LDRD two entries, and when
// neither is a candidate (the OR of the two is not negative) STRD them back at
// the write position (two pairs a loop); else one by one: a candidate ~row is
// kept when its key is at least t (t2 = t << 1, compared with the shifted bits);
// INT32_MIN (the sentinel at rows[listed]) ends it. Needs rows[listed + 1] to be readable.
// Returns the end of the kept list.
int32_t* DropCandidatesAsm(const float* values, uint32_t t2, int32_t* rows) {
  int32_t* p = rows;
  int32_t* w = rows;
  int32_t e0, e1;
  uint32_t x;
#define TFLM_TRAIN_DROP_ONE(E, L)                          \
  "cmp %[" E "], #0\n\t"                                   \
  "bge " L "4f\n\t"                                        \
  "cmn %[" E "], #0x80000000\n\t"                          \
  "beq 9f\n\t"                                             \
  "mvn %[" E "], %[" E "]\n\t"                            \
  "ldr %[x], [%[vals], %[" E "], lsl #2]\n\t"             \
  "cmp %[t2], %[x], lsl #1\n\t"                            \
  "bhi " L "5f\n\t"                                        \
  L "4:\n\t"                                               \
  "str %[" E "], [%[w]], #4\n\t"                           \
  L "5:\n\t"
// Two entries with no candidate stored back (two pairs a loop, one branch back).
#define TFLM_TRAIN_DROP_PAIR                         \
  "ldrd %[e0], %[e1], [%[p]], #8\n\t"                \
  "orrs %[x], %[e0], %[e1]\n\t"                      \
  "bmi 1f\n\t"                                       \
  "strd %[e0], %[e1], [%[w]], #8\n\t"
  __asm__ volatile(
      "0:\n\t"
      TFLM_TRAIN_DROP_PAIR
      TFLM_TRAIN_DROP_PAIR
      "b 0b\n\t"
      "1:\n\t"
      TFLM_TRAIN_DROP_ONE("e0", "2")
      TFLM_TRAIN_DROP_ONE("e1", "3")
      "b 0b\n\t"
      "9:\n\t"
      : [p] "+r"(p), [w] "+r"(w), [e0] "=&r"(e0), [e1] "=&r"(e1), [x] "=&r"(x)
      : [vals] "r"(values), [t2] "r"(t2)
      : "cc", "memory");
#undef TFLM_TRAIN_DROP_ONE
#undef TFLM_TRAIN_DROP_PAIR
  return w;
}
#else
#define TFLM_TRAIN_TOP_K_ASM 0
#endif

// Below this size a plain quickselect is as cheap as sampling a bracket.
constexpr int kMinBracketed = 512;

// Hoare quickselect (larger keys first): afterwards key[target] is the
// (target + 1)-th largest of key[0..n), every key before it is >= it and every
// key after it <= it. Each round puts key[lo], key[mid], key[hi] in order,
// largest first, and partitions around the middle one, their median: the ends
// then already lie on their sides and stop the scans, which start inside them,
// and both sides keep at least one key, so each round shrinks the range. Equal
// keys split evenly, so many ties (ReLU-zeroed errors) cost no more than
// distinct values. Adds the keys partitioned to *comparisons.
uint32_t SelectKth(uint32_t* key, int n, int target, uint64_t* comparisons) {
  int lo = 0, hi = n - 1;
  uint64_t partitioned = 0;  // summed here, added once
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    uint32_t a = key[lo], b = key[mid], c = key[hi];
    if (a < b) { const uint32_t t = a; a = b; b = t; }
    if (b < c) { const uint32_t t = b; b = c; c = t; }
    if (a < b) { const uint32_t t = a; a = b; b = t; }
    // Stored in this order so that two keys (mid == lo) end as a, c.
    key[hi] = c;
    key[mid] = b;
    key[lo] = a;
    partitioned += static_cast<uint64_t>(hi - lo + 1);
    // Pointers, not indices: each scan step is then a load with writeback, a
    // compare and a branch.
    uint32_t* pi = key + lo;
    uint32_t* pj = key + hi;
    for (;;) {
      do ++pi; while (*pi > b);
      do --pj; while (*pj < b);
      if (pi >= pj) break;
      const uint32_t t = *pi;
      *pi = *pj;
      *pj = t;
    }
    const int j = static_cast<int>(pj - key);
    if (target <= j) {
      hi = j;
    } else {
      lo = j + 1;
    }
  }
  *comparisons += partitioned;
  return key[target];
}

// Writes the kept rows for threshold key t: every key above t, and the first
// `ties` keys equal to t in index order (the reference's tie rule).
void WriteRows(const float* values, int n, uint32_t t, int ties, int32_t* rows) {
  int count = 0;
  for (int i = 0; i < n; ++i) {
    const uint32_t m = Key(values[i]);
    if (m > t || (m == t && ties-- > 0)) rows[count++] = i;
  }
}

// The whole selection by quickselect over all n keys (small n, or a bracket
// that missed).
uint64_t SelectByQuickselect(const float* values, int n, int k, uint32_t* key, int32_t* rows) {
  for (int i = 0; i < n; ++i) key[i] = Key(values[i]);
  uint64_t comparisons = 0;
  const uint32_t t = SelectKth(key, n, k - 1, &comparisons);
  // Every key above t is among the first k; the rest of the k are ties at t.
  int above = 0;
  for (int i = 0; i < k; ++i) above += key[i] > t ? 1 : 0;
  WriteRows(values, n, t, k - above, rows);
  return comparisons;
}

// rows = 0, 1, ..., n - 1 (k >= n: every row kept; n >= 1). A function of its
// own, so that its loop keeps `rows` in a register (at -Os, inlined into
// SelectTopKRows, it reloaded it from the stack for every row), and a
// do-while: a store, an add, a compare and a branch per row at -O2 and -Os.
__attribute__((noinline)) void AllRows(int n, int32_t* rows) {
  int32_t* p = rows;
  int32_t* const end = rows + n;
  int32_t i = 0;
  do {
    *p++ = i++;
  } while (p != end);
}

// The integer square root of a small v (v <= 1024 here).
int SmallSqrt(int v) {
  int r = 0;
  while ((r + 1) * (r + 1) <= v) ++r;
  return r;
}

// Fills key[0..s) with a sample of the keys of values[0..n): one per stratum of
// n / s, at a fixed pseudo-random offset so strided layouts such as NHWC
// channels do not bias it. Deterministic: the same sample every call. Not
// inlined: inside SelectTopKRows GCC widened the stride to 64 bits, one more
// multiply per key.
__attribute__((noinline)) void TakeSample(const float* values, int n, int s, uint32_t* key) {
  const int stride = n / s;
  const uint32_t width = static_cast<uint32_t>(stride);
  const float* stratum = values;
  uint32_t* const end = key + s;
  uint32_t lcg = 12345u;
  // A pointer to each stratum and one to the key (s >= 1): a multiply-add, a
  // widening multiply, a load, a mask, a store and an add per key.
  do {
    lcg = lcg * 1664525u + 1013904223u;
    const uint32_t offset = static_cast<uint32_t>((static_cast<uint64_t>(lcg) * width) >> 32);
    *key++ = Key(stratum[offset]);
    stratum += stride;
  } while (key != end);
}

// The key of sample rank `rank` (0 = largest) of key[0..s), with the edges for
// ranks past the sample: above the largest every key (kMaxKey), below the
// smallest the smallest nonzero (zeros are never listed).
constexpr uint32_t kMaxKey = 0xFFFFFFFEu;
uint32_t SampleKey(uint32_t* key, int s, int rank, uint64_t* comparisons) {
  if (rank < 0) return kMaxKey;
  if (rank >= s) return kSmallestNonzeroKey;
  const uint32_t v = SelectKth(key, s, rank, comparisons);
  return v < kSmallestNonzeroKey ? kSmallestNonzeroKey : v;
}

// Step 4 without a sentinel: keeps the sure rows and the candidates with key
// >= t of [p, end), compacted to p. Returns the end of the kept list.
int32_t* DropBelow(const float* values, uint32_t t, int32_t* p, int32_t* const end) {
  int32_t* w = p;
  for (; p != end; ++p) {
    int32_t e = *p;
    if (e < 0) {
      e = ~e;
      if (Key(values[e]) < t) continue;
    }
    *w++ = e;
  }
  return w;
}

// Step 4 over [p, end), with the INT32_MIN sentinel at end: up to the first
// dropped candidate only the marks go; from it on, DropBelow. Returns the end
// of the kept list.
int32_t* DropBelowToSentinel(const float* values, uint32_t t, int32_t* p, int32_t* const end) {
  for (;;) {
    while (*p >= 0) ++p;
    if (p == end) return p;
    const int32_t e = ~*p;
    if (Key(values[e]) < t) break;
    *p++ = e;
  }
  return DropBelow(values, t, p, end);
}

// Removes the last `excess` entries with key t from the kept list ending at
// `end` (which holds more than `excess` of them): the ties past the k-th.
void DropLastTies(const float* values, uint32_t t, int excess, int32_t* end) {
  if (excess <= 0) return;
  int32_t* q = end;
  for (int left = excess; left > 0;) {
    --q;
    if (Key(values[*q]) == t) --left;
  }
  int32_t* w = q;
  for (int32_t* p = q; p != end; ++p) {
    if (Key(values[*p]) != t) *w++ = *p;
  }
}

// What one listing found: the k rows, or on which side of its bracket T lies.
enum class Listed { kDone, kBelowBracket, kAboveBracket };

// Steps 2 to 4 for the bracket [lo, hi] (lo >= 1): lists the rows, ranks the
// candidates and drops those below T and the ties past the k-th. On a miss,
// rows and key hold scraps.
Listed ListRows(const float* values, int n, int k, uint32_t lo, uint32_t hi, uint32_t* key, int32_t* rows,
                uint64_t* comparisons) {
  // 2. One pass lists, in index order, every row whose key is >= lo: rows above
  // hi are kept whatever T is; the candidates in [lo, hi] go in as ~row (< 0)
  // and their keys to the scratch. Most rows are below lo: List costs them a
  // load, a compare and a branch (the loop unrolled for that).
  const uint32_t lo2 = lo << 1;
  int32_t* out = rows;
  uint32_t* cand = key;
  int i = 0;
#if TFLM_TRAIN_TOP_K_ASM
  i = n & ~31;
  if (i > 0) ListBlocks(values, i, lo2, hi << 1, &out, &cand);
#endif
  for (; i + 4 <= n; i += 4) {
    List(FloatBits(values[i]), i, lo2, hi, &out, &cand);
    List(FloatBits(values[i + 1]), i + 1, lo2, hi, &out, &cand);
    List(FloatBits(values[i + 2]), i + 2, lo2, hi, &out, &cand);
    List(FloatBits(values[i + 3]), i + 3, lo2, hi, &out, &cand);
  }
  for (; i < n; ++i) List(FloatBits(values[i]), i, lo2, hi, &out, &cand);
  const int listed = static_cast<int>(out - rows);
  const int candidates = static_cast<int>(cand - key);
  *comparisons += static_cast<uint64_t>(n);
  const int above_hi = listed - candidates;
  if (listed < k) {
    if (lo != kSmallestNonzeroKey) return Listed::kBelowBracket;
    // T = 0: every nonzero is kept, and the lowest-index zeros fill up to k.
    WriteRows(values, n, 0, k - listed, rows);
    return Listed::kDone;
  }
  if (above_hi >= k) return Listed::kAboveBracket;

  // 3. T is the (k - above_hi)-th largest candidate.
  const uint32_t t = SelectKth(key, candidates, k - above_hi - 1, comparisons);

  // 4. Drop the candidates below T from the list, in place, keeping every key
  // >= T. A sentinel (INT32_MIN, a candidate mark no row has) after the list
  // lets the loops test one sign per entry: up to the first dropped candidate
  // nothing moves (kept candidates only lose their mark), after it every kept
  // entry moves down.
  int32_t* kept_end;
  if (listed == n) {  // no room for the sentinel (every row listed): plain loop
    kept_end = DropBelow(values, t, rows, rows + listed);
  } else {
    rows[listed] = INT32_MIN;
#if TFLM_TRAIN_TOP_K_ASM
    if (listed < n - 1) {  // rows[listed + 1] readable
      kept_end = DropCandidatesAsm(values, t << 1, rows);
    } else
#endif
    {
      kept_end = DropBelowToSentinel(values, t, rows, rows + listed);
    }
  }
  // More than k kept means ties at T past the k-th: drop the last of them
  // (ties go to the lower rows). Only candidates can equal T, so on distinct
  // magnitudes this pass rarely runs; on quantized errors it may, at the cost
  // of one more pass over the list's tail.
  DropLastTies(values, t, static_cast<int>(kept_end - rows) - k, kept_end);
  return Listed::kDone;
}

}  // namespace

uint64_t SelectTopKRows(const float* values, int n, int k, int32_t* index, uint8_t* mask, int32_t* rows) {
  (void)mask;
  if (k >= n) {
    if (n > 0) AllRows(n, rows);
    return 0;
  }
  uint32_t* key = reinterpret_cast<uint32_t*>(index);  // the scratch holds keys, not indices
  if (n < kMinBracketed) return SelectByQuickselect(values, n, k, key, rows);

  // 1. A bracket [lo, hi] that holds the k-th largest key T, from a sample of
  // s keys. T ranks about r = k s / n in the sample, give or take `spread`:
  // 1.25 standard deviations of that binomial count, plus one. A narrow
  // bracket leaves few candidates to rank and drop; T misses it on some calls
  // (kernel_bench: 2 of 35 and 4 of 32), and the next bracket, on T's side,
  // then costs one more listing; that narrowness measured cheapest on average
  // (kernel_bench's mean_of_32 lines: 1 to 3 standard deviations tried).
  int s = n / 12;
  if (s > 256) s = 256;
  TakeSample(values, n, s, key);
  // (32-bit divisions when the products fit, as they do below 2^23 values:
  // the same quotients without a call to a 64-bit division routine.)
  int r, var;
  if (n < (1 << 23)) {
    r = k * s / n;
    var = r * (n - k) / n;
  } else {
    r = static_cast<int>(static_cast<int64_t>(k) * s / n);
    var = static_cast<int>(static_cast<int64_t>(r) * (n - k) / n);
  }
  const int spread = 5 * SmallSqrt(16 * var) / 16 + 1;  // SmallSqrt(16 var) = 4 sigma
  uint64_t comparisons = 0;
  const int b = r + spread, a = r - spread - 1;
  // Rank b, then rank a among the b larger keys.
  const uint32_t lo = SampleKey(key, s, b, &comparisons);
  const uint32_t hi = a >= 0 ? SelectKth(key, b < s ? b : s, a, &comparisons) : kMaxKey;
  const Listed listed = ListRows(values, n, k, lo, hi, key, rows, &comparisons);
  if (listed == Listed::kDone) return comparisons;

  // 5. T missed the bracket: list again with the next bracket on its side
  // (the listing overwrote the sample: take it again).
  TakeSample(values, n, s, key);
  const bool below = listed == Listed::kBelowBracket;
  const uint32_t lo2 = below ? SampleKey(key, s, b + 2 * spread, &comparisons) : hi;
  const uint32_t hi2 = below ? lo : SampleKey(key, s, a - 2 * spread, &comparisons);
  if (ListRows(values, n, k, lo2, hi2, key, rows, &comparisons) == Listed::kDone) return comparisons;
  return comparisons + SelectByQuickselect(values, n, k, key, rows);
}

}  // namespace fast
}  // namespace kernels
}  // namespace tflm_train
