//! The OpenAPI 3.1 document (`GET /openapi.json`) and its Swagger UI (`GET /docs`, every
//! asset served from the binary). The operations are declared here, one per route of
//! `routes::routes`, over the typed bodies of [`schemas`]; `tests/openapi.rs` checks that
//! the document's paths and methods are exactly the router's.

mod operations;
mod schemas;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::AppState;
use operations::*;

const BEARER: &str = "bearer";

/// Answers every authenticated operation may give, whatever its body.
const COMMON_ERRORS: [(&str, &str); 7] = [
    ("401", "No token, a malformed one, or a bad signature"),
    ("403", "The token expired or was revoked (`token_expired`)"),
    (
        "409",
        "Validation, in Joi's wording (`MissingParameter`); malformed JSON too",
    ),
    ("413", "The body is over the limit (`payload_too_large`)"),
    (
        "429",
        "The client's rate limit on this node; see `Retry-After`",
    ),
    ("503", "The face-pipeline queue is full; see `Retry-After`"),
    ("500", "Anything unexpected (`internal_error`)"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "visage",
        description = "Self-hosted face recognition speaking the Verifik face-recognition API. \
            Every `/v2` operation takes `Authorization: Bearer <JWT>`; errors are Verifik's \
            bodies (`{message, code}`), listed in docs/api.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        livez, readyz, health, metrics, session,
        collections_list, collections_create, collections_retrieve, collections_update,
        collections_delete,
        persons_list, persons_create, persons_lookup, persons_search_live_face,
        persons_retrieve, persons_update, persons_delete,
        search, search_crops, search_active_user, search_live_face,
        verify, compare, detect, liveness, liveness_score, compare_live, compare_with_liveness,
    ),
    modifiers(&Conventions),
    tags(
        (name = "probes", description = "Health and metrics for operators"),
        (name = "auth"), (name = "collections"), (name = "persons"),
        (name = "search", description = "1:N search"),
        (name = "biometrics", description = "1:1 verify and compare, detection, liveness"),
    )
)]
pub struct ApiDoc;

/// The bearer scheme, and the common error answers on every operation that uses it.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                // OpenAPI requires a description on every response.
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        if response.description.is_empty() {
                            response.description = default_description(status).to_owned();
                        }
                    }
                }
                if operation.security.is_none() {
                    continue;
                }
                for (status, description) in COMMON_ERRORS {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description).into());
                }
            }
        }
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "Success",
        "401" => "Authentication required",
        "404" => "Not found (or another client's)",
        "409" => "Conflict or validation, in Joi's wording",
        "412" => "The image or a precondition was refused; `message` says which: for images `invalid_image`, `no_face_detected`, `only_images_in_base64`, `image_too_large`; for image URLs `image_urls_disabled`, `image_url_not_allowed`, `image_url_unreachable`, `image_url_too_large`",
        "501" => "The liveness models are not installed",
        "503" => "Not ready or busy",
        _ => "See docs/api.md",
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// `/openapi.json` and `/docs`. Swagger UI's validator badge (an image from another host) is
/// off, so the page loads nothing from elsewhere.
pub fn routes() -> Router<AppState> {
    let config = Config::new(["/openapi.json"]).validator_url("none");
    Router::from(
        SwaggerUi::new("/docs")
            .url("/openapi.json", ApiDoc::openapi())
            .config(config),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        assert!(doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")));
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let search = &doc["paths"]["/v2/face-recognition/search"]["post"];
        assert!(search["responses"]["429"].is_object(), "{search}");
        assert!(doc["paths"]["/livez"]["get"]["responses"]["401"].is_null());
    }
}
