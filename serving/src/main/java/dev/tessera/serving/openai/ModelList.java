package dev.tessera.serving.openai;

import java.util.List;

/** {@code GET /v1/models}: {@code {"object": "list", "data": [model, ...]}}. */
public record ModelList(String object, List<Model> data) {

    /** One model card; {@code created} is in Unix seconds. */
    public record Model(String id, String object, long created, String ownedBy) {
        public static Model of(String id, long created) {
            return new Model(id, "model", created, "tessera");
        }
    }

    public static ModelList of(List<Model> models) {
        return new ModelList("list", models);
    }
}
