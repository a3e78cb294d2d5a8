# xyp_blas: the engine's optional native kernels (see blas.c and libs/engine/src/native.ts).
{
  "targets": [
    {
      "target_name": "xyp_blas",
      "sources": ["blas.c"],
      # Debian's threaded OpenBLAS (libopenblas0-pthread); its headers live in a per-variant directory
      # under the multiarch include directory (x86_64-linux-gnu, aarch64-linux-gnu, ...).
      "include_dirs": ["<!(echo /usr/include/$(gcc -print-multiarch)/openblas-pthread)"],
      "libraries": ["-lopenblas", "-lm", "-lpthread"],
      # -march=native: built by tools/native/build.sh on the machine that runs it.
      # -ffast-math at compile time only, so that GCC vectorises expf through glibc's libmvec; it must
      # not reach the link step, where it would add crtfastmath.o and make the whole Node process flush
      # denormals to zero.
      "cflags": ["-O3", "-march=native", "-ffast-math", "-std=c11", "-Wall", "-Wextra"]
    }
  ]
}
