// Fuzz target: cachet-control's TOML configuration (control/config.cc). Invariants: nothing
// throws or crashes; a refused file leaves the configuration as it was and says why; an
// accepted one, written back option by option (value_toml), reads back to the same values.
#include <string>

#include "control/config.hh"
#include "tests/fuzz/harness.hh"

using namespace cachet;
using namespace cachet::control;

namespace {

std::string as_toml(const Config& c) {
  std::string out, section;
  for (const OptionInfo& o : options()) {
    if (o.section != section) {
      section = o.section;
      out += "[" + section + "]\n";
    }
    out += std::string(o.key) + " = " + value_toml(c, o) + "\n";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Config defaults;
  Config c;
  std::string error;
  if (!parse_config(text, "fuzz.toml", &c, &error)) {
    FUZZ_EXPECT(!error.empty(), "a refused config without a reason");
    FUZZ_EXPECT(as_toml(c) == as_toml(defaults), "a refused config changed the values");
    return 0;
  }
  const std::string written = as_toml(c);
  Config again;
  FUZZ_EXPECT(parse_config(written, "written.toml", &again, &error),
               "the accepted config, written back, is refused: {}\n{}", error, written);
  FUZZ_EXPECT(as_toml(again) == written, "the config changed on its way back:\n{}\n{}",
               written, as_toml(again));
  return 0;
}
