/*
 * A tiny check harness for the C tests: CHECK counts a passed or failed
 * condition (printing the failures), EXPECT compares a libchathub result
 * with the code expected, and check_summary() prints the closing line
 * "N passed, M failed" and gives the exit status.
 */
#ifndef CHATHUB_TEST_CHECK_H
#define CHATHUB_TEST_CHECK_H

#include <stdio.h>

#include "chathub.h"

static int check_passed;
static int check_failed;

static void check_at(int ok, const char *what, const char *file, int line) {
  if (ok) {
    check_passed++;
  } else {
    check_failed++;
    fprintf(stderr, "FAILED %s:%d: %s\n", file, line, what);
  }
}

#define CHECK(cond) check_at((cond) ? 1 : 0, #cond, __FILE__, __LINE__)

static void expect_at(chathub_result got, chathub_result want, const char *call,
                      const char *file, int line) {
  if (got == want) {
    check_passed++;
  } else {
    check_failed++;
    fprintf(stderr, "FAILED %s:%d: %s gave %u (%s; %s), expected %u (%s)\n", file, line, call,
            (unsigned)got, chathub_result_text(got), chathub_last_error_message(),
            (unsigned)want, chathub_result_text(want));
  }
}

#define EXPECT(call, want) expect_at((call), (want), #call, __FILE__, __LINE__)

static int check_summary(const char *suite) {
  printf("%s: %d passed, %d failed\n", suite, check_passed, check_failed);
  fflush(stdout);
  return check_failed == 0 ? 0 : 1;
}

#endif
