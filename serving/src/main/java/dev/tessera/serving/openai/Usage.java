package dev.tessera.serving.openai;

/** Token counts of one response: the prompt(s) once, every choice's generated tokens. */
public record Usage(int promptTokens, int completionTokens, int totalTokens) {
    public static Usage of(int promptTokens, int completionTokens) {
        return new Usage(promptTokens, completionTokens, promptTokens + completionTokens);
    }
}
