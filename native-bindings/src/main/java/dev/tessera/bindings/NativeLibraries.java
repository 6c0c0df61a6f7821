package dev.tessera.bindings;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * Finds NVIDIA's shared libraries. Search order, first hit wins:
 * <ol>
 *   <li>{@code TESSERA_CUDA_LIB_PATH} (colon-separated folders)</li>
 *   <li>{@code LD_LIBRARY_PATH}</li>
 *   <li>{@code /usr/local/cuda/lib64}, {@code /usr/local/nvidia/lib64}, {@code /usr/lib/x86_64-linux-gnu},
 *       {@code /usr/lib64}, {@code /usr/lib/wsl/lib}</li>
 *   <li>the lib folders of NVIDIA's pip wheels, {@code <site-packages>/nvidia/* /lib}, in every Python
 *       site-packages or dist-packages folder found on disk, plus those {@code python3} reports</li>
 *   <li>the dynamic linker's own search (ld.so.cache), by file name</li>
 * </ol>
 * Libraries stay loaded for the life of the process ({@link Arena#global()}).
 */
public final class NativeLibraries {
    static final List<String> SYSTEM_DIRS = List.of("/usr/local/cuda/lib64", "/usr/local/nvidia/lib64",
            "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib/wsl/lib");
    private static final long PYTHON_TIMEOUT_MILLIS = 3000;
    private static volatile List<Path> sitePackages;

    private NativeLibraries() {}

    /** A loaded library and the path (or bare file name, for the dynamic linker's search) it came from. */
    public record Found(String path, SymbolLookup lookup) {}

    /**
     * Loads the first of {@code fileNames} found in the search order (every folder is tried for the first name, then
     * for the next), or throws {@code <api> unavailable: <name> not found (looked in: ...)}.
     *
     * @param companions per file name, a library loaded first from the same folder when present (or null): a wheel's
     *                   libcublas.so needs libcublasLt.so beside it, which the dynamic linker would not find by itself
     */
    public static Found load(String api, String[] fileNames, String[] companions) {
        List<Path> fixed = fixedDirs();
        Found found = loadFrom(fixed, fileNames, companions);
        if (found != null) return found;
        List<Path> wheels = wheelDirs("lib");
        found = loadFrom(wheels, fileNames, companions);
        if (found != null) return found;
        for (String name : fileNames) {
            try {
                return new Found(name, SymbolLookup.libraryLookup(name, Arena.global()));
            } catch (IllegalArgumentException notFound) {
                // next name
            }
        }
        Set<String> looked = new LinkedHashSet<>();
        for (Path p : fixed) looked.add(p.toString());
        for (Path p : wheels) looked.add(p.toString());
        looked.add("the dynamic linker's default paths");
        throw new LibraryUnavailableException(api + " unavailable: " + String.join(" or ", fileNames)
                + " not found (looked in: " + String.join(", ", looked) + ")");
    }

    /** Loads {@code fileName} from exactly these folders; the tests use it to see the message without a GPU host. */
    static Found loadFrom(List<Path> dirs, String[] fileNames, String[] companions) {
        for (int i = 0; i < fileNames.length; i++) {
            for (Path dir : dirs) {
                Path lib = dir.resolve(fileNames[i]);
                if (!Files.isRegularFile(lib)) continue;
                try {
                    if (companions != null && companions[i] != null && Files.isRegularFile(dir.resolve(companions[i])))
                        SymbolLookup.libraryLookup(dir.resolve(companions[i]), Arena.global());
                    return new Found(lib.toString(), SymbolLookup.libraryLookup(lib, Arena.global()));
                } catch (IllegalArgumentException unloadable) {
                    // a broken or foreign-architecture file: keep looking
                }
            }
        }
        return null;
    }

    /** Environment folders first, then the usual system folders, without duplicates. */
    public static List<Path> fixedDirs() {
        Set<Path> dirs = new LinkedHashSet<>();
        addPathList(dirs, System.getenv("TESSERA_CUDA_LIB_PATH"));
        addPathList(dirs, System.getenv("LD_LIBRARY_PATH"));
        for (String d : SYSTEM_DIRS) dirs.add(Path.of(d));
        return new ArrayList<>(dirs);
    }

    /** {@code <site-packages>/nvidia/<package>/<leaf>} for every NVIDIA wheel installed; leaf is "lib" or "include". */
    public static List<Path> wheelDirs(String leaf) {
        List<Path> out = new ArrayList<>();
        for (Path site : sitePackages()) {
            Path nvidia = site.resolve("nvidia");
            if (!Files.isDirectory(nvidia)) continue;
            try (DirectoryStream<Path> packages = Files.newDirectoryStream(nvidia)) {
                List<Path> sorted = new ArrayList<>();
                for (Path p : packages) if (Files.isDirectory(p.resolve(leaf))) sorted.add(p.resolve(leaf));
                sorted.sort(null);
                out.addAll(sorted);
            } catch (IOException e) {
                // unreadable folder: nothing to add
            }
        }
        return out;
    }

    /** Python site-packages and dist-packages folders, found on disk and, when python3 exists, asked of it. */
    public static List<Path> sitePackages() {
        List<Path> cached = sitePackages;
        if (cached != null) return cached;
        Set<Path> dirs = new LinkedHashSet<>();
        String home = System.getProperty("user.home", "/root");
        for (String pattern : List.of("/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
                "/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages", home + "/.local/lib/python3*/site-packages",
                "/opt/conda/lib/python3*/site-packages", home + "/.pyenv/versions/*/lib/python3*/site-packages")) {
            dirs.addAll(glob(pattern));
        }
        dirs.addAll(askPython());
        List<Path> found = new ArrayList<>();
        for (Path d : dirs) if (Files.isDirectory(d)) found.add(d);
        sitePackages = List.copyOf(found);
        return sitePackages;
    }

    /** Expands '*' within path segments (no recursion); enough for python3* and versions/*. */
    static List<Path> glob(String pattern) {
        List<Path> current = List.of(Path.of("/"));
        for (String segment : pattern.substring(1).split("/")) {
            List<Path> next = new ArrayList<>();
            for (Path base : current) {
                if (!segment.contains("*")) {
                    Path p = base.resolve(segment);
                    if (Files.exists(p)) next.add(p);
                    continue;
                }
                try (DirectoryStream<Path> children = Files.newDirectoryStream(base, segment)) {
                    for (Path c : children) next.add(c);
                } catch (IOException e) {
                    // missing or unreadable: no matches here
                }
            }
            next.sort(null);
            current = next;
        }
        return current;
    }

    /** site.getsitepackages() of the python3 on PATH, with a short timeout; empty when there is none. */
    private static List<Path> askPython() {
        String path = System.getenv("PATH");
        if (path == null) return List.of();
        Path python = null;
        for (String dir : path.split(":")) {
            if (dir.isEmpty()) continue;
            Path p = Path.of(dir, "python3");
            if (Files.isExecutable(p)) { python = p; break; }
        }
        if (python == null) return List.of();
        try {
            Process process = new ProcessBuilder(python.toString(), "-c",
                    "import site\nfor p in site.getsitepackages() + [site.getusersitepackages()]: print(p)")
                    .redirectErrorStream(false).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            if (!process.waitFor(PYTHON_TIMEOUT_MILLIS, TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                return List.of();
            }
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            List<Path> dirs = new ArrayList<>();
            for (String line : out.split("\n")) if (!line.isBlank()) dirs.add(Path.of(line.trim()));
            return dirs;
        } catch (IOException e) {
            return List.of();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of();
        }
    }

    private static void addPathList(Set<Path> dirs, String list) {
        if (list == null) return;
        for (String d : list.split(":")) if (!d.isBlank()) dirs.add(Path.of(d.trim()));
    }
}
