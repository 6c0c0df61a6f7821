package dev.tessera.serving;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The official {@code openai} npm client against {@code tessera serve} running as a real process:
 * {@code serving/src/test/node/openai-suite.mjs} under {@code node --test}. Installs the pinned client with
 * {@code npm ci} when node_modules is missing. Node and npm are required (CI has them): without them this fails.
 */
class OpenAiClientSuiteTest {
    private static final Path SUITE_DIR = Path.of("src/test/node").toAbsolutePath();

    @Test
    void officialOpenAiClientSuitePasses() throws Exception {
        requireTool("node");
        requireTool("npm");
        if (!Files.isDirectory(SUITE_DIR.resolve("node_modules/openai"))) {
            Result install = run(new ProcessBuilder("npm", "ci", "--no-audit", "--no-fund"), SUITE_DIR, 600);
            System.out.println(install.output);
            assertEquals(0, install.exitCode, "npm ci in " + SUITE_DIR + " failed:\n" + install.output);
        }
        String key = "sk-tessera-test-" + ProcessHandle.current().pid();
        try (ServeProcess server = ServeProcess.start(key)) {
            ProcessBuilder pb = new ProcessBuilder("node", "--test", "--test-reporter=spec", "openai-suite.mjs");
            pb.environment().put("TESSERA_URL", server.baseUrl());
            pb.environment().put("TESSERA_API_KEY", key);
            pb.environment().put("TESSERA_MODEL", ServeProcess.MODEL_NAME);
            pb.environment().put("TESSERA_REFERENCE", ServeProcess.MODELS.resolve("stories260K.reference.json").toAbsolutePath().toString());
            Result suite = run(pb, SUITE_DIR, 300);
            System.out.println("---- node --test openai-suite.mjs ----\n" + suite.output);
            if (suite.exitCode != 0) {
                fail("openai client suite failed (exit " + suite.exitCode + "):\n" + suite.output + "\n---- server log ----\n" + server.log());
            }
            assertTrue(java.util.regex.Pattern.compile("(?m)^\\S*\\s*fail 0\\s*$").matcher(suite.output).find(),
                    "node --test did not report 'fail 0':\n" + suite.output);
            assertTrue(server.isAlive(), "the server died during the suite:\n" + server.log());
        }
    }

    private static void requireTool(String tool) throws InterruptedException {
        try {
            Process p = new ProcessBuilder(tool, "--version").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            if (p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0) return;
        } catch (IOException e) {
            // not installed
        }
        fail(tool + " not found on PATH: the openai client suite needs Node.js 20+ and npm (apt-get install nodejs npm)");
    }

    private record Result(int exitCode, String output) {}

    private static Result run(ProcessBuilder pb, Path dir, int timeoutSeconds) throws IOException, InterruptedException {
        Path out = Files.createTempFile("tessera-node-", ".log");
        try {
            Process p = pb.directory(dir.toFile()).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
                return new Result(-1, "timed out after " + timeoutSeconds + " s\n" + Files.readString(out, StandardCharsets.UTF_8));
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
        }
    }
}
