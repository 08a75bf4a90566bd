//! The OpenAPI 3.1 description of the API, generated from the code: the request and answer
//! schemas are derived from the types of [`crate::surface`] (utoipa), and the action paths
//! from [`crate::surface::each_action`], so a new action is described as soon as it exists.
//! Served at `GET /api/openapi.json`.

use std::sync::OnceLock;

use axum::Json;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Paths,
    Ref, RefOr, Required, ResponseBuilder, Type,
};

use crate::surface::{self, ActionVisitor, CaseAction};

/// The security scheme: the caller's GitHub token as a bearer token.
const SECURITY: &str = "github_token";

fn json_content(
    schema: impl Into<RefOr<utoipa::openapi::schema::Schema>>,
) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn schema_ref<T: ToSchema>() -> Ref {
    Ref::from_schema_name(T::name())
}

/// An operation with its summary, the error answers every endpoint shares, and (when
/// `authenticated`) the bearer token.
fn operation(
    id: &str,
    summary: &str,
    authenticated: bool,
    ok: (&str, &str, Option<RefOr<utoipa::openapi::schema::Schema>>),
) -> OperationBuilder {
    let (status, description, schema) = ok;
    let mut ok = ResponseBuilder::new().description(description);
    if let Some(schema) = schema {
        ok = ok.content("application/json", json_content(schema));
    }
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .response(status, ok.build());
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                json_content(schema_ref::<surface::ErrorBody>()),
            )
            .build()
    };
    if authenticated {
        op = op
            .security(SecurityRequirement::new(SECURITY, Vec::<String>::new()))
            .response("400", error("malformed JSON or a malformed field"))
            .response("401", error("no token, or a token GitHub refuses"))
            .response("403", error("refused: the caller may not do this"))
            .response("404", error("unknown case"))
            .response("409", error("the input contradicts the case's state"))
            .response(
                "422",
                error("a missing or unknown field, or an input that does not fit the case"),
            );
    }
    op
}

fn case_id_parameter() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("The case id, e.g. LS-20260101-ABC123."))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn query_parameter(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn json_body(schema: Ref) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .content("application/json", json_content(schema))
        .required(Some(Required::True))
        .build()
}

/// Builds the description.
fn report_parameters(op: OperationBuilder) -> OperationBuilder {
    let path = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    op.parameter(path("owner", "The report's repository owner."))
        .parameter(path("repo", "The report's repository name."))
        .parameter(path("ghsa", "The report's advisory, GHSA-XXXX-XXXX-XXXX."))
}

/// The private vulnerability report endpoints.
fn add_report_paths(paths: &mut Paths) {
    const ONE: &str = "/api/reports/{owner}/{repo}/{ghsa}";
    paths.add_path_operation(
        "/api/reports",
        vec![HttpMethod::Get],
        operation(
            "list_reports",
            "The private vulnerability reports awaiting triage on the repositories the caller coordinates or maintains (with all=true, decided ones too); anyone else is refused.",
            true,
            (
                "200",
                "the reports",
                Some(schema_ref::<surface::ReportList>().into()),
            ),
        )
        .parameter(query_parameter("all", "true: decided reports too."))
        .build(),
    );
    paths.add_path_operation(
        ONE,
        vec![HttpMethod::Get],
        report_parameters(operation(
            "show_report",
            "A report (coordinators of a workflow listing its repository, and its maintainers), with its workflows' out-of-scope rules as the choices.",
            true,
            (
                "200",
                "the report",
                Some(schema_ref::<surface::ReportView>().into()),
            ),
        ))
        .build(),
    );
    paths.add_path_operation(
        format!("{ONE}/reject"),
        vec![HttpMethod::Post],
        report_parameters(operation(
            "reject_report",
            "Rejects a report awaiting triage (coordinators and the repository's maintainers), optionally under an out-of-scope rule; its advisory is closed on GitHub.",
            true,
            (
                "200",
                "the report as decided",
                Some(schema_ref::<surface::ReportView>().into()),
            ),
        ))
        .request_body(Some(json_body(schema_ref::<surface::RejectReport>())))
        .build(),
    );
    paths.add_path_operation(
        format!("{ONE}/merge"),
        vec![HttpMethod::Post],
        report_parameters(operation(
            "merge_report",
            "Merges a second report of a case's vulnerability into the case (coordinators): adopted where the case has no advisory yet, else closed as a duplicate; its reporter is credited.",
            true,
            (
                "200",
                "the case",
                Some(schema_ref::<surface::Acted>().into()),
            ),
        ))
        .request_body(Some(json_body(schema_ref::<surface::MergeReport>())))
        .build(),
    );
}

fn build() -> OpenApi {
    let mut paths = Paths::new();
    let mut components = ComponentsBuilder::new()
        .schema_from::<surface::ErrorBody>()
        .schema_from::<surface::OpenRequest>()
        .schema_from::<surface::Opened>()
        .schema_from::<surface::CaseView>()
        .schema_from::<surface::Acted>()
        // Named through `value_type`, which does not bring the schema along.
        .schema_from::<surface::VerdictName>()
        .schema_from::<surface::FixStageName>()
        .schema_from::<surface::ThreatName>()
        .schema_from::<surface::OneOrMany>()
        .schema_from::<surface::Line>()
        .schema_from::<surface::ReportList>()
        .schema_from::<surface::ReportSummary>()
        .schema_from::<surface::ReportView>()
        .schema_from::<surface::RuleView>()
        .schema_from::<surface::RejectReport>()
        .schema_from::<surface::MergeReport>()
        .security_scheme(
            SECURITY,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    let object = || ObjectBuilder::new().schema_type(Type::Object).build();

    paths.add_path_operation(
        "/api/cases",
        vec![HttpMethod::Get],
        operation(
            "list_cases",
            "Lists a page of the cases the caller may read, oldest first: {\"cases\": [...], \"next\": CASE or null}.",
            true,
            ("200", "the cases", Some(object().into())),
        )
        .parameter(query_parameter(
            "limit",
            "Cases per page, 1 to 1000 (default 100).",
        ))
        .parameter(query_parameter(
            "after",
            "The last case of the previous page (its `next`).",
        ))
        .build(),
    );
    paths.add_path_operation(
        "/api/cases",
        vec![HttpMethod::Post],
        operation(
            "open_case",
            "Opens a case (coordinators of the workflow).",
            true,
            (
                "201",
                "opened",
                Some(schema_ref::<surface::Opened>().into()),
            ),
        )
        .request_body(Some(json_body(schema_ref::<surface::OpenRequest>())))
        .build(),
    );
    paths.add_path_operation(
        "/api/cases/{id}",
        vec![HttpMethod::Get],
        operation(
            "show_case",
            "Shows a case, as `lockstep case show --json` does.",
            true,
            (
                "200",
                "the case",
                Some(schema_ref::<surface::CaseView>().into()),
            ),
        )
        .parameter(case_id_parameter())
        .build(),
    );
    paths.add_path_operation(
        "/api/cases/{id}/plan",
        vec![HttpMethod::Get],
        operation(
            "plan_case",
            "What holds the case and the waves that would run (the core's Plan).",
            true,
            ("200", "the plan", Some(object().into())),
        )
        .parameter(case_id_parameter())
        .build(),
    );
    paths.add_path_operation(
        "/api/cases/{id}/export/{format}",
        vec![HttpMethod::Get],
        operation(
            "export_case",
            "The case as OSV 1.7 records, a CSAF 2.0 VEX document or CVE JSON 5 records: one document, or an array of them.",
            true,
            ("200", "the document or documents", Some(object().into())),
        )
        .parameter(case_id_parameter())
        .parameter(
            ParameterBuilder::new()
                .name("format")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("`osv`, `csaf` or `cve`."))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        )
        .parameter(query_parameter(
            "repo",
            "Only this repository's advisory (osv, cve).",
        ))
        .build(),
    );
    add_report_paths(&mut paths);
    paths.add_path_operation(
        "/api/openapi.json",
        vec![HttpMethod::Get],
        operation(
            "openapi",
            "This description.",
            false,
            ("200", "the OpenAPI description", Some(object().into())),
        )
        .build(),
    );

    struct Actions<'a> {
        paths: &'a mut Paths,
        components: Option<ComponentsBuilder>,
    }
    impl ActionVisitor for Actions<'_> {
        fn visit<A: CaseAction>(&mut self) {
            self.components = self.components.take().map(|c| c.schema_from::<A>());
            self.paths.add_path_operation(
                format!("/api/cases/{{id}}/{}", A::PATH),
                vec![HttpMethod::Post],
                operation(
                    A::NAME,
                    A::SUMMARY,
                    true,
                    (
                        "200",
                        "the case after the action, with events_committed (0: nothing changed)",
                        Some(schema_ref::<surface::Acted>().into()),
                    ),
                )
                .parameter(case_id_parameter())
                .request_body(Some(json_body(schema_ref::<A>())))
                .build(),
            );
        }
    }
    let mut actions = Actions {
        paths: &mut paths,
        components: Some(components),
    };
    surface::each_action(&mut actions);
    components = actions.components.unwrap_or_default();

    paths.add_path_operation(
        "/webhooks/github",
        vec![HttpMethod::Post],
        operation(
            "github_webhook",
            "GitHub webhook deliveries, verified by X-Hub-Signature-256.",
            false,
            ("202", "accepted (or a duplicate delivery)", None),
        )
        .build(),
    );
    for (path, id, summary) in [
        ("/healthz", "healthz", "The process answers."),
        ("/readyz", "readyz", "The database answers."),
        ("/metrics", "metrics", "Prometheus text format 0.0.4."),
    ] {
        paths.add_path_operation(
            path,
            vec![HttpMethod::Get],
            operation(id, summary, false, ("200", "ok", None)).build(),
        );
    }

    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Lockstep")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Cross-repository coordinated vulnerability disclosure. Callers authenticate \
                     with their own GitHub token (Authorization: Bearer); every error is \
                     {\"error\": \"<one line>\"}.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// The description as JSON (built once).
pub fn document() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(build()).unwrap_or_default())
}

/// `GET /api/openapi.json`.
pub(crate) async fn serve() -> Response {
    Json(document()).into_response()
}
