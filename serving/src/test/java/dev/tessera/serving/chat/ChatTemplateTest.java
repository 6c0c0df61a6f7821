package dev.tessera.serving.chat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.gguf.GgufValue;
import dev.tessera.models.gguf.GgufWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Conformance with Jinja2 3.1.6 as Hugging Face runs it: every case of
 * {@code ../shared/models/chat-templates/expected.json} (real templates × three conversations) renders to
 * the identical prompt, or is refused with the identical message.
 */
class ChatTemplateTest {

    private static final Path MODELS = Path.of(System.getProperty("tessera.models", "../../shared/models"));
    private static final Path TEMPLATES = MODELS.resolve("chat-templates");
    /** The fixed date of expected.json's renderer: strftime_now uses 2026-01-15. */
    private static final Clock FIXED_DATE =
            Clock.fixed(LocalDate.of(2026, 1, 15).atTime(12, 0).toInstant(ZoneOffset.UTC), ZoneOffset.UTC);
    private static final Map<String, int[]> PER_TEMPLATE = new TreeMap<>(); // template -> {passed, total}

    @TestFactory
    List<DynamicTest> everyExpectedCaseMatchesJinja2() throws IOException {
        JsonNode root = new ObjectMapper().readTree(TEMPLATES.resolve("expected.json").toFile());
        JsonNode variables = root.get("variables");
        assertEquals("<s>", variables.get("bos_token").asText());
        assertEquals("</s>", variables.get("eos_token").asText());
        boolean addGenerationPrompt = variables.get("add_generation_prompt").asBoolean();
        assertTrue(root.get("renderer").asText().contains("trim_blocks=True, lstrip_blocks=True"));

        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : root.get("cases")) {
            String templateName = c.get("template").asText();
            String source = Files.readString(TEMPLATES.resolve(templateName));
            List<ChatMessage> messages = new ArrayList<>();
            for (JsonNode m : c.get("messages")) messages.add(new ChatMessage(m.get("role").asText(), m.get("content").asText()));
            tests.add(DynamicTest.dynamicTest(templateName + " × " + c.get("conversation").asText(), () -> {
                int[] tally = PER_TEMPLATE.computeIfAbsent(templateName, k -> new int[2]);
                tally[1]++;
                ChatTemplate template = ChatTemplate.of(source, "<s>", "</s>", FIXED_DATE);
                if (c.has("error")) {
                    String expected = c.get("error").asText();
                    // expected.json writes Jinja2's exception as "TemplateError: message"; ours carries the message.
                    String message = expected.substring(expected.indexOf(": ") + 2);
                    ChatTemplateException e = assertThrows(ChatTemplateException.class,
                            () -> template.render(messages, addGenerationPrompt));
                    assertEquals(message, e.getMessage());
                    assertTrue(e.raisedByTemplate());
                } else {
                    assertEquals(c.get("rendered").asText(), template.render(messages, addGenerationPrompt));
                }
                tally[0]++;
            }));
        }
        assertEquals(27, tests.size(), "expected.json: 9 templates × 3 conversations");
        return tests;
    }

    @AfterAll
    static void printPerTemplate() {
        PER_TEMPLATE.forEach((t, r) -> System.out.println("chat template conformance: " + t + " " + r[0] + "/" + r[1]));
    }

    @Test
    void stories260KHasNoTemplateAndGetsChatMlWithItsOwnSpecialTokens() {
        try (GgufFile f = GgufFile.open(MODELS.resolve("stories260K.gguf"))) {
            ChatTemplate t = ChatTemplate.fromGguf(f);
            assertTrue(t.isFallback());
            assertEquals("<s>", t.bosToken());
            assertEquals("</s>", t.eosToken());
            assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                    t.render(List.of(new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hi")), true));
            assertEquals("<|im_start|>user\nHi<|im_end|>\n",
                    t.render(List.of(new ChatMessage("user", "Hi")), false));
        }
    }

    @Test
    void fromGgufReadsTheTemplateAndTokenTexts(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("with-template.gguf");
        String gemma = Files.readString(TEMPLATES.resolve("google-gemma-2-2b-it.jinja"));
        try (GgufFile src = GgufFile.open(MODELS.resolve("stories260K.gguf"))) {
            Map<String, GgufValue> meta = new LinkedHashMap<>(src.metadata());
            meta.put("tokenizer.chat_template", GgufValue.ofString(gemma));
            meta.put("tokenizer.ggml.bos_token_id", GgufValue.ofUint32(2)); // swapped, to see the ids are read
            meta.put("tokenizer.ggml.eos_token_id", GgufValue.ofUint32(1));
            GgufWriter w = new GgufWriter().version(src.version()).metadata(meta);
            for (GgufTensorInfo t : src.tensors().values()) w.tensor(t.name(), t.dims(), t.type());
            w.write(out, (info, dst) -> dst.copyFrom(src.data(src.tensor(info.name()))));
        }
        try (GgufFile f = GgufFile.open(out)) {
            ChatTemplate t = ChatTemplate.fromGguf(f);
            assertFalse(t.isFallback());
            assertEquals(gemma, t.source());
            assertEquals("</s>", t.bosToken());
            assertEquals("<s>", t.eosToken());
            assertEquals("</s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
                    t.render(List.of(new ChatMessage("user", "Hi")), true));
            ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> t.render(
                    List.of(new ChatMessage("user", "a"), new ChatMessage("user", "b")), true));
            assertEquals("Conversation roles must alternate user/assistant/user/assistant/...", e.getMessage());
        }
    }

    private static String render(String source, Map<String, ?> extra) {
        return ChatTemplate.of(source, "<s>", "</s>", FIXED_DATE).render(List.of(new ChatMessage("user", " Hi ")), true, extra);
    }

    @Test
    void notBindsLooserThanTestsAndComparisonsAsInJinja2() {
        assertEquals("False", render("{% if not add_generation_prompt is defined %}True{% else %}False{% endif %}", Map.of()));
        assertEquals("True", render("{% if not messages|length == 2 %}True{% endif %}", Map.of()));
        assertEquals("ok", render("{% if 'x' not in 'abc' and not none is not none %}ok{% endif %}", Map.of()));
        assertEquals("2", render("{% set ns = namespace(a=true, b=messages|length + 1) %}{{ ns.b }}", Map.of()));
    }

    @Test
    void pythonStringMethodsAndSlices() {
        assertEquals("[Hi]", render("[{{ messages[0].content.strip() }}]", Map.of()));
        assertEquals("[Hi ]", render("[{{ messages[0].content.lstrip() }}]", Map.of()));
        assertEquals("b|c", render("{{ 'a.b.c'.split('.')[1:]|join('|') }}", Map.of()));
        assertEquals("c", render("{{ 'a.b.c'.split('.')[-1] }}", Map.of()));
        assertEquals("['a', 'b']", render("{{ '  a  b '.split() }}", Map.of()).replace("\"", "'"));
        assertEquals("True", render("{{ 'True' if 'abc'.startswith(('x', 'a')) and 'abc'.endswith('bc') else 'False' }}", Map.of()));
        assertEquals("3,2,1", render("{{ [1, 2, 3][::-1]|join(',') }}", Map.of()));
        assertEquals("ax", render("{{ 'axx'.rstrip('x') + 'x' }}", Map.of()));
        assertEquals("a-b", render("{{ 'a b'.replace(' ', '-') }}", Map.of()));
    }

    @Test
    void tojsonWritesPythonJsonDumps() {
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("name", "get_weather");
        tool.put("city", "東京");
        tool.put("days", List.of(1, 2));
        tool.put("ok", true);
        tool.put("none", null);
        assertEquals("{\"name\": \"get_weather\", \"city\": \"東京\", \"days\": [1, 2], \"ok\": true, \"none\": null}",
                render("{{ t | tojson }}", Map.of("t", tool)));
        assertEquals("{\n  \"a\": [\n    1\n  ]\n}", render("{{ t | tojson(indent=2) }}", Map.of("t", Map.of("a", List.of(1)))));
    }

    @Test
    void strftimeNowUsesTheClockAndDefinedChecksSeeIt() {
        assertEquals("15 Jan 2026|2026-01-15", render(
                "{% if strftime_now is defined %}{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d') }}{% endif %}", Map.of()));
    }

    @Test
    void aBrokenTemplateIsAnErrorNamingTheLineNotARaise() {
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render("ok\n{{ messages[0].content.nosuch() }}", Map.of()));
        assertFalse(e.raisedByTemplate());
        assertTrue(e.getMessage().startsWith("chat template failed at line 2: "), e.getMessage());
    }

    @Test
    void firstRaiseWins() {
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> render("{{ raise_exception('first') }}{{ raise_exception('second') }}", Map.of()));
        assertEquals("first", e.getMessage());
        if (!e.raisedByTemplate()) fail("raise_exception must be marked as the template's own refusal");
    }
}
