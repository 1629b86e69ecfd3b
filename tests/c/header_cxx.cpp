// The header from C++: it compiles with -Wall -Wextra -Wpedantic -Werror and
// the library links and answers (the enums are typed `uint32_t` there).
#include <cstdio>
#include <cstring>

#include "chathub.h"

int main() {
  chathub_config *config = nullptr;
  chathub_result r = chathub_config_new(&config);
  if (r != CHATHUB_RESULT_OK || config == nullptr) return 1;
  r = chathub_config_set_bind(config, "not an address");
  chathub_config_free(config);
  if (r != CHATHUB_RESULT_INVALID_ARGUMENT) return 1;
  if (std::strcmp(chathub_result_text(CHATHUB_RESULT_CLOSED), "the hub is stopped") != 0) return 1;
  std::printf("header_cxx: 1 passed, 0 failed\n");
  return 0;
}
