package dev.tessera.bindings;

import dev.tessera.bindings.cublas.cublas_api_h;
import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.bindings.nccl.nccl_h;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.PaddingLayout;
import java.lang.foreign.StructLayout;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Compiles a C program against the real headers that prints every constant, typedef size and struct offset the
 * bindings declare, and compares them with the Java values. The C signature in each binding's javadoc snippet is
 * checked against the header's declaration with {@code __builtin_types_compatible_p}, and its parameter count and
 * scalar sizes against the Java method. cuda.h ships with the CUDA toolkit (present in CI); cublas_api.h and nccl.h
 * come with NVIDIA's pip wheels or a full toolkit and are skipped with a reason when absent.
 */
class HeaderCheckTest {
    private static final Pattern SNIPPET = Pattern.compile("\\{@snippet lang=c : (.+?) \\} \\*/");
    private static final Pattern SIGNATURE = Pattern.compile("(.+?[\\s*])(\\w+)\\((.*)\\)");

    @TempDir
    Path tmp;

    @Test
    void cudaHeaderMatchesBindings() throws Exception {
        Path include = headerDir("cuda.h");
        Assumptions.assumeTrue(include != null, "cuda.h not found (set TESSERA_CUDA_INCLUDE); CUDA header check skipped");
        check(cuda_h.class, "cuda.h", List.of(include), field -> true);
    }

    @Test
    void cublasHeaderMatchesBindings() throws Exception {
        Path include = headerDir("cublas_api.h");
        if (include == null) {
            // Without cublas_api.h, the cudaDataType values can still be checked: they live in library_types.h.
            Path cuda = headerDir("library_types.h");
            Assumptions.assumeTrue(cuda != null, "neither cublas_api.h nor library_types.h found; cuBLAS header check skipped");
            check(cublas_api_h.class, "library_types.h", List.of(cuda), field -> field.startsWith("CUDA_R_"));
            Assumptions.abort("cublas_api.h not found (set TESSERA_CUDA_INCLUDE); only cudaDataType values were checked, against library_types.h");
        }
        check(cublas_api_h.class, "cublas_api.h", includeDirs(include), field -> true);
    }

    @Test
    void ncclHeaderMatchesBindings() throws Exception {
        Path include = headerDir("nccl.h");
        Assumptions.assumeTrue(include != null, "nccl.h not found (set TESSERA_CUDA_INCLUDE); NCCL header check skipped");
        check(nccl_h.class, "nccl.h", includeDirs(include), field -> true);
    }

    /** The harness itself must catch a wrong value: a binding class with one wrong constant has to be reported. */
    @Test
    void checkerReportsAWrongValue() throws Exception {
        Path include = headerDir("cuda.h");
        Assumptions.assumeTrue(include != null, "cuda.h not found; CUDA header check skipped");
        List<String> found = mismatches(wrong_cuda_h.class, "cuda.h", List.of(include), field -> true);
        assertEquals(List.of("const CUDA_ERROR_NO_DEVICE: Java 101, cuda.h 100"), found);
    }

    /** Stands in for a binding with a typo. */
    static final class wrong_cuda_h {
        public static final int CUDA_SUCCESS = 0;
        public static final int CUDA_ERROR_NO_DEVICE = 101;
    }

    interface FieldFilter { boolean test(String name); }

    private void check(Class<?> binding, String header, List<Path> includes, FieldFilter filter) throws Exception {
        assertEquals(List.of(), mismatches(binding, header, includes, filter), binding.getSimpleName() + " differs from " + header);
    }

    private List<String> mismatches(Class<?> binding, String header, List<Path> includes, FieldFilter filter) throws Exception {
        Map<String, String> expected = new LinkedHashMap<>();
        List<String> prints = new ArrayList<>();
        for (Field f : binding.getFields()) {
            if (!Modifier.isStatic(f.getModifiers()) || !filter.test(f.getName())) continue;
            String n = f.getName();
            if (f.getType() == int.class || f.getType() == long.class) {
                expected.put("const " + n, String.valueOf(((Number) f.get(null)).longValue()));
                prints.add("printf(\"const " + n + " %lld\\n\", (long long)(" + n + "));");
            } else if (MemoryLayout.class.isAssignableFrom(f.getType()) && !n.startsWith("C_")) {
                MemoryLayout layout = (MemoryLayout) f.get(null);
                expected.put("size " + n, String.valueOf(layout.byteSize()));
                prints.add("printf(\"size " + n + " %zu\\n\", sizeof(" + n + "));");
                if (layout instanceof StructLayout s) {
                    for (MemoryLayout m : s.memberLayouts()) {
                        if (m instanceof PaddingLayout) continue;  // the compiler's alignment padding, unnamed in C
                        String member = m.name().orElseThrow();
                        expected.put("offset " + n + "." + member, String.valueOf(s.byteOffset(MemoryLayout.PathElement.groupElement(member))));
                        prints.add("printf(\"offset " + n + "." + member + " %zu\\n\", offsetof(" + n + ", " + member + "));");
                    }
                }
            }
        }
        List<String> asserts = new ArrayList<>();
        List<String> mismatches = new ArrayList<>();
        if (header.equals(sourceHeader(binding))) {
            for (String signature : snippets(binding)) {
                Matcher m = SIGNATURE.matcher(signature);
                if (!m.matches()) { mismatches.add("unparseable snippet: " + signature); continue; }
                String ret = m.group(1).trim(), name = m.group(2), params = m.group(3).trim();
                asserts.add("_Static_assert(__builtin_types_compatible_p(__typeof__(&" + name + "), " + ret + " (*)(" + params + ")), \"" + name + ": " + signature.replace("\"", "") + "\");");
                Method method = method(binding, name);
                List<String> cParams = params.equals("void") || params.isEmpty() ? List.of() : List.of(params.split(","));
                if (method == null) { mismatches.add(name + ": no Java method"); continue; }
                if (method.getParameterCount() != cParams.size()) {
                    mismatches.add(name + ": Java takes " + method.getParameterCount() + " parameters, C takes " + cParams.size());
                    continue;
                }
                for (int i = 0; i < cParams.size(); i++) {
                    String cType = cParams.get(i).trim().replaceAll("\\w+$", "").trim();
                    Class<?> carrier = method.getParameterTypes()[i];
                    if (cType.contains("*")) {
                        if (carrier != MemorySegment.class) mismatches.add(name + " parameter " + i + ": C pointer " + cType + ", Java " + carrier);
                        continue;
                    }
                    String key = "param " + name + "." + i;
                    expected.put(key, String.valueOf(carrier == MemorySegment.class ? -1 : carrierSize(carrier)));
                    prints.add(carrier == MemorySegment.class ? "" : "printf(\"" + key + " %zu\\n\", sizeof(" + cType + "));");
                    if (carrier == MemorySegment.class) expected.remove(key); // a struct by value: its layout size is checked above
                }
            }
        }
        String source = "#include <stdio.h>\n#include <stddef.h>\n#include <" + header + ">\n" + String.join("\n", asserts) + "\n";
        Map<String, String> printed = runProgram(source, includes, prints);
        for (Map.Entry<String, String> e : expected.entrySet()) {
            String got = printed.get(e.getKey());
            if (!e.getValue().equals(got)) mismatches.add(e.getKey() + ": Java " + e.getValue() + ", " + header + " " + got);
        }
        assertTrue(!expected.isEmpty(), "nothing to check in " + binding.getSimpleName());
        return mismatches;
    }

    private Map<String, String> runProgram(String prelude, List<Path> includes, List<String> prints) throws IOException, InterruptedException {
        Path c = tmp.resolve("check.c"), exe = tmp.resolve("check");
        Files.writeString(c, prelude + "int main(void) {\n" + String.join("\n", prints) + "\nreturn 0;\n}\n");
        List<String> cmd = new ArrayList<>(List.of(compiler(), "-std=gnu11", "-o", exe.toString(), c.toString()));
        for (Path i : includes) cmd.add("-I" + i);
        String compileOut = exec(cmd);
        assertTrue(Files.isExecutable(exe), "C check program did not compile: " + compileOut);
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : exec(List.of(exe.toString())).split("\n")) {
            int sp = line.lastIndexOf(' ');
            if (sp > 0) out.put(line.substring(0, sp), line.substring(sp + 1));
        }
        return out;
    }

    private static String exec(List<String> cmd) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "timed out: " + cmd);
        return out;
    }

    private static String compiler() {
        for (String cc : List.of("gcc", "cc", "clang")) {
            for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin").split(":"))
                if (Files.isExecutable(Path.of(dir, cc))) return Path.of(dir, cc).toString();
        }
        Assumptions.abort("no C compiler (gcc, cc or clang) on PATH; header check skipped");
        return null;
    }

    private static int carrierSize(Class<?> c) {
        if (c == int.class || c == float.class) return 4;
        if (c == long.class || c == double.class) return 8;
        if (c == byte.class) return 1;
        if (c == short.class) return 2;
        throw new IllegalStateException("unexpected carrier " + c);
    }

    private static Method method(Class<?> binding, String name) {
        for (Method m : binding.getMethods()) if (m.getName().equals(name) && Modifier.isStatic(m.getModifiers())) return m;
        return null;
    }

    private static String sourceHeader(Class<?> binding) {
        return binding.getSimpleName().replaceAll("_h$", ".h");
    }

    /** The C declarations in the binding's javadoc snippets, read from its source (javadoc is not in class files). */
    private static List<String> snippets(Class<?> binding) throws IOException {
        Path src = Path.of("src/main/java", binding.getName().replace('.', '/') + ".java");
        assertTrue(Files.isRegularFile(src), "binding source not found at " + src.toAbsolutePath());
        List<String> out = new ArrayList<>();
        Matcher m = SNIPPET.matcher(Files.readString(src));
        while (m.find()) if (m.group(1).contains("(")) out.add(m.group(1));
        return out;
    }

    /** The folder holding {@code header}: TESSERA_CUDA_INCLUDE, the CUDA toolkit, then NVIDIA's pip wheels. */
    static Path headerDir(String header) {
        for (Path dir : candidateIncludeDirs()) if (Files.isRegularFile(dir.resolve(header))) return dir;
        return null;
    }

    /** The header's folder plus every other include folder, since cublas_api.h and nccl.h include CUDA runtime headers. */
    private static List<Path> includeDirs(Path first) {
        Set<Path> dirs = new LinkedHashSet<>();
        dirs.add(first);
        dirs.addAll(candidateIncludeDirs());
        List<Path> out = new ArrayList<>();
        for (Path d : dirs) if (Files.isDirectory(d)) out.add(d);
        return out;
    }

    private static List<Path> candidateIncludeDirs() {
        List<Path> dirs = new ArrayList<>();
        String env = System.getenv("TESSERA_CUDA_INCLUDE");
        if (env != null) for (String d : env.split(":")) if (!d.isBlank()) dirs.add(Path.of(d));
        dirs.add(Path.of("/usr/local/cuda/include"));
        dirs.add(Path.of("/usr/include"));
        dirs.addAll(NativeLibraries.wheelDirs("include"));
        return dirs;
    }
}
