// Self-registration of the addon's optional kernel files: a .cc file adds its exports with
//   static const tessera::AddonModule kModule("int8", [](Napi::Env env, Napi::Object exports) { ... });
// and Init calls every registered module, so adding a kernel file never edits addon.cc.
#pragma once

#include <napi.h>

#include <vector>

namespace tessera {

using AddonRegisterFn = void (*)(Napi::Env env, Napi::Object exports);

struct AddonModuleEntry {
  const char* name;
  AddonRegisterFn fn;
};

// A function-local static, so registration from other translation units' static
// initialisers never runs before the list exists.
inline std::vector<AddonModuleEntry>& AddonModules() {
  static std::vector<AddonModuleEntry> modules;
  return modules;
}

struct AddonModule {
  AddonModule(const char* name, AddonRegisterFn fn) { AddonModules().push_back({name, fn}); }
};

}  // namespace tessera
