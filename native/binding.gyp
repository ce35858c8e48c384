{
  "target_defaults": {
    "include_dirs": ["../kernel/include/uapi"],
    "cflags": ["-Wall", "-Wextra", "-Werror", "-O2", "-fno-strict-aliasing"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
  },
  "targets": [
    {
      "target_name": "icmpcap_core",
      "type": "static_library",
      "cflags": ["-fPIC"],
      "sources": [
        "src/core/afpacket_source.cc",
        "src/core/bpf_filter.c",
        "src/core/decode.c",
        "src/core/errors.cc",
        "src/core/genl.cc",
        "src/core/interfaces.cc",
        "src/core/link_watch.cc",
        "src/core/module_source.cc",
        "src/core/open.cc",
        "src/core/probe.cc",
        "src/core/record.cc",
        "src/core/ring_reader.cc",
        "src/core/ring_source.cc",
        "src/core/routes.cc",
        "src/core/rtnl.cc",
        "src/core/source.cc",
        "src/core/spool_encode.cc"
      ]
    },
    {
      "target_name": "icmpcap",
      "dependencies": ["icmpcap_core"],
      "sources": ["src/binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ]
    },
    {
      "target_name": "icmpcap_bench",
      "dependencies": ["icmpcap_core"],
      "sources": ["src/binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "ICMPCAP_BENCH",
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ]
    },
    {
      "target_name": "icmpcap-helper",
      "type": "executable",
      "sources": [
        "helper/icmpcap-helper.c",
        "helper/producer.c",
        "src/core/bpf_filter.c",
        "src/core/decode.c"
      ],
      "cflags": ["-fPIE", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"],
      "ldflags": ["-pie", "-Wl,-z,relro,-z,now"]
    }
  ]
}
