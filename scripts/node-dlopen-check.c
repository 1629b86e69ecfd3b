/*
 * Loads a Node addon (.node) the way Node does, with dlopen(), and looks up
 * its N-API entry point, napi_register_module_v1, without calling it (that
 * needs a Node). For platforms this machine has no Node for: built by
 * scripts/node-packages.sh with the target's C compiler and run under its
 * loader (musl's, or qemu-user for another architecture).
 *
 *   node-dlopen-check PATH.node     exit 0 and one line when it loads
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s ADDON.node\n", argv[0]);
        return 2;
    }
    void *addon = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (addon == NULL) {
        fprintf(stderr, "dlopen failed: %s\n", dlerror());
        return 1;
    }
    void *entry = dlsym(addon, "napi_register_module_v1");
    if (entry == NULL) {
        fprintf(stderr, "no napi_register_module_v1: %s\n", dlerror());
        return 1;
    }
    printf("loaded %s: napi_register_module_v1 at %p\n", argv[1], entry);
    return 0;
}
