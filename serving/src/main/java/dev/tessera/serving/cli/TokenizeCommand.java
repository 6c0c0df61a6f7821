package dev.tessera.serving.cli;

import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/** {@code tessera tokenize}: prints the token ids of a text, like llama.cpp's {@code llama-tokenize --ids}. */
public final class TokenizeCommand implements Command {
    @Override public String name() { return "tokenize"; }

    @Override public String summary() { return "print the token ids of a text for a model's vocabulary"; }

    @Override public String usage() {
        return """
                usage: tessera tokenize --model PATH [--text TEXT] [--no-bos] [--no-parse-special]

                Prints the token ids of TEXT (or of all of stdin, byte for byte, when --text is absent)
                on one line, separated by spaces.

                options:
                  --model PATH          GGUF file whose tokenizer.ggml.* metadata defines the vocabulary (required)
                  --text TEXT           text to tokenize; without it stdin is read to the end (a trailing newline
                                        is kept, as llama-tokenize --stdin does)
                  --no-bos              add no special tokens (no BOS/EOS); by default they are added where the
                                        model's metadata asks for them (add_bos_token, add_eos_token)
                  --no-parse-special    tokenize the texts of control tokens (e.g. <|eot_id|>, <s>) as plain text;
                                        by default they become their ids, as llama-tokenize does
                  --help                show this help""";
    }

    @Override
    public int run(List<String> args) throws Exception {
        CliArgs a = new CliArgs(args, Set.of("model", "text"), Set.of("no-bos", "no-parse-special"));
        Path model = Path.of(a.require("model"));
        String text = a.has("text") ? a.get("text", "") : new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        Tokenizer tokenizer;
        try (GgufFile f = GgufFile.open(model)) {
            tokenizer = Tokenizer.fromGguf(f);
        }
        int[] ids = tokenizer.encode(text, !a.has("no-bos"), !a.has("no-parse-special"));
        System.out.println(Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(" ")));
        return 0;
    }
}
