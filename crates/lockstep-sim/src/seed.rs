//! Built-in demo seed: the ten official MCP SDK repositories (snapshot of
//! `shared/mcp/sdks.json`, kept in the crate so nothing is read at run time).

use crate::{OrgRole, Permission, SimError, Simulator};

/// One SDK repository of the demo seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoSdk {
    /// `owner/name`.
    pub repo: &'static str,
    /// GitHub advisory ecosystem.
    pub ecosystem: &'static str,
    /// Package names as they appear in advisories.
    pub packages: &'static [&'static str],
}

/// The ten MCP SDK repositories.
pub const MCP_SDKS: &[DemoSdk] = &[
    DemoSdk {
        repo: "modelcontextprotocol/typescript-sdk",
        ecosystem: "npm",
        packages: &[
            "@modelcontextprotocol/sdk",
            "@modelcontextprotocol/server",
            "@modelcontextprotocol/core",
        ],
    },
    DemoSdk {
        repo: "modelcontextprotocol/python-sdk",
        ecosystem: "pip",
        packages: &["mcp"],
    },
    DemoSdk {
        repo: "modelcontextprotocol/java-sdk",
        ecosystem: "maven",
        packages: &[
            "io.modelcontextprotocol.sdk:mcp-core",
            "io.modelcontextprotocol.sdk:mcp",
        ],
    },
    DemoSdk {
        repo: "modelcontextprotocol/kotlin-sdk",
        ecosystem: "maven",
        packages: &[
            "io.modelcontextprotocol:kotlin-sdk",
            "io.modelcontextprotocol:kotlin-sdk-server",
        ],
    },
    DemoSdk {
        repo: "modelcontextprotocol/csharp-sdk",
        ecosystem: "nuget",
        packages: &["ModelContextProtocol", "ModelContextProtocol.AspNetCore"],
    },
    DemoSdk {
        repo: "modelcontextprotocol/go-sdk",
        ecosystem: "go",
        packages: &["github.com/modelcontextprotocol/go-sdk"],
    },
    DemoSdk {
        repo: "modelcontextprotocol/rust-sdk",
        ecosystem: "rust",
        packages: &["rmcp"],
    },
    DemoSdk {
        repo: "modelcontextprotocol/swift-sdk",
        ecosystem: "swift",
        packages: &["github.com/modelcontextprotocol/swift-sdk"],
    },
    DemoSdk {
        repo: "modelcontextprotocol/ruby-sdk",
        ecosystem: "rubygems",
        packages: &["mcp"],
    },
    DemoSdk {
        repo: "modelcontextprotocol/php-sdk",
        ecosystem: "composer",
        packages: &["mcp/sdk"],
    },
];

/// Login of the demo admin (security manager + admin on every SDK repo).
pub const DEMO_ADMIN: &str = "lockstep-bot";
/// Token of [`DEMO_ADMIN`].
pub const DEMO_ADMIN_TOKEN: &str = "ghp_lockstepDemoAdminToken0000000000000";
/// A maintainer with `maintain` (not admin) on every SDK repo.
pub const DEMO_MAINTAINER: &str = "sdk-maintainer";
/// Token of [`DEMO_MAINTAINER`].
pub const DEMO_MAINTAINER_TOKEN: &str = "ghp_lockstepDemoMaintainerToken00000000";
/// An outside reporter with no repository permission.
pub const DEMO_REPORTER: &str = "security-researcher";
/// Token of [`DEMO_REPORTER`].
pub const DEMO_REPORTER_TOKEN: &str = "ghp_lockstepDemoReporterToken0000000000";

/// Id of the demo GitHub App.
pub const DEMO_APP_ID: u64 = 1001;
/// Slug of the demo GitHub App (its bot is `lockstep-demo[bot]`).
pub const DEMO_APP_SLUG: &str = "lockstep-demo";
/// Its installation on the `modelcontextprotocol` organisation (admin on every SDK repo).
pub const DEMO_INSTALLATION_ID: u64 = 2001;
/// The demo App's public key (its JWTs are checked against it).
pub const DEMO_APP_PUBLIC_KEY_PEM: &str = include_str!("../demo/demo-app-key.pub.pem");
/// The demo App's private key: public by design (`demo/README.md`), for clients of the
/// standalone simulator. Never register it with a real App.
pub const DEMO_APP_PRIVATE_KEY_PEM: &str = include_str!("../demo/demo-app-key.pem");

/// Seeds the demo data set into `sim`.
pub fn demo(sim: &Simulator) -> Result<(), SimError> {
    sim.add_user(DEMO_ADMIN, DEMO_ADMIN_TOKEN);
    sim.add_user(DEMO_MAINTAINER, DEMO_MAINTAINER_TOKEN);
    sim.add_user(DEMO_REPORTER, DEMO_REPORTER_TOKEN);
    for sdk in MCP_SDKS {
        sim.add_repo(sdk.repo)?;
        sim.grant(sdk.repo, DEMO_ADMIN, Permission::Admin)?;
        sim.grant(sdk.repo, DEMO_MAINTAINER, Permission::Maintain)?;
    }
    sim.set_org_role("modelcontextprotocol", DEMO_ADMIN, OrgRole::SecurityManager)?;
    sim.add_app(DEMO_APP_ID, DEMO_APP_SLUG, DEMO_APP_PUBLIC_KEY_PEM)?;
    sim.add_installation(
        DEMO_INSTALLATION_ID,
        DEMO_APP_ID,
        "modelcontextprotocol",
        &[],
        Permission::Admin,
    )?;
    Ok(())
}
