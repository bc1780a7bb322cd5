/* tests/test.h - a minimal test harness for kiln's C tests.
 *
 * A test file defines `static void test_x(void)` functions and lists them in
 * main() with RUN(test_x); TEST_REPORT() prints "N passed, N failed" and gives
 * the exit code ctest reads. CHECK* record a failure and go on; REQUIRE* also
 * return from the test function. SKIP_TEST() marks the test skipped (exit
 * code 77, which ctest reports as skipped when every test in the file skips).
 */
#ifndef KILN_TESTS_TEST_H
#define KILN_TESTS_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_failures_;     /* failed checks in the current test */
static int tests_passed_;      /* tests with no failed check */
static int tests_failed_;      /* tests with at least one failed check */
static int tests_skipped_;     /* tests that called SKIP_TEST */
static int test_skip_current_; /* the current test asked to be skipped */

#define TEST_FAIL_AT_(...)                                                    \
    do {                                                                      \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                     \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
        test_failures_++;                                                     \
    } while (0)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) TEST_FAIL_AT_("CHECK failed: %s", #cond);               \
    } while (0)

#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            TEST_FAIL_AT_("REQUIRE failed: %s", #cond);                      \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                    \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_) TEST_FAIL_AT_("%s == %s: %lld != %lld", #a, #b, a_, b_); \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                    \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                \
            TEST_FAIL_AT_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
                          b_ ? b_ : "(null)");                                \
    } while (0)

/* The string a contains b. */
#define CHECK_CONTAINS(a, b)                                                  \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (!a_ || !strstr(a_, b_))                                           \
            TEST_FAIL_AT_("\"%s\" does not contain \"%s\"", a_ ? a_ : "(null)", b_); \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                 \
    do {                                                                      \
        double a_ = (double)(a), b_ = (double)(b);                            \
        double s_ = fabs(b_) > 1.0 ? fabs(b_) : 1.0;                          \
        if (!(fabs(a_ - b_) <= (tol) * s_))                                   \
            TEST_FAIL_AT_("%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, (double)(tol)); \
    } while (0)

#define SKIP_TEST(...)                                                        \
    do {                                                                      \
        fprintf(stderr, "  skipped: ");                                       \
        fprintf(stderr, __VA_ARGS__);                                         \
        fputc('\n', stderr);                                                  \
        test_skip_current_ = 1;                                               \
        return;                                                               \
    } while (0)

#define RUN(fn)                                                               \
    do {                                                                      \
        test_failures_ = 0;                                                   \
        test_skip_current_ = 0;                                               \
        fn();                                                                 \
        if (test_failures_) {                                                 \
            tests_failed_++;                                                  \
            fprintf(stderr, "FAIL %s\n", #fn);                                \
        } else if (test_skip_current_) {                                      \
            tests_skipped_++;                                                 \
            fprintf(stderr, "SKIP %s\n", #fn);                                \
        } else {                                                              \
            tests_passed_++;                                                  \
            fprintf(stderr, "ok   %s\n", #fn);                                \
        }                                                                     \
    } while (0)

#define TEST_REPORT()                                                         \
    (printf("%d passed, %d failed, %d skipped\n", tests_passed_, tests_failed_, \
            tests_skipped_),                                                  \
     tests_failed_ ? 1 : (tests_passed_ == 0 && tests_skipped_ ? 77 : 0))

/* Directory of the source tree and of ../shared/data (may not exist). */
#ifndef KILN_SOURCE_DIR
#define KILN_SOURCE_DIR "."
#endif
#ifndef KILN_SHARED_DATA_DIR
#define KILN_SHARED_DATA_DIR KILN_SOURCE_DIR "/../shared/data"
#endif

#endif /* KILN_TESTS_TEST_H */
