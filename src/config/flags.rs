//! The one table of flags. Every flag is defined here once: its name, the
//! environment variables that may set it, its default and its documentation.
//! The clap parser, `--help` and `--man` are generated from this table; the
//! README's flag tables are checked against it (`tests/examples.rs`).

/// What kind of value a flag takes; decides how it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag`, `--flag=true|false`.
    Bool,
    /// A signed integer.
    Int,
    /// A Go-style duration (`10s`, `1m30s`, `250ms`).
    Duration,
    /// Free text.
    Text,
    /// Free text, may be given more than once; values accumulate.
    List,
}

/// One flag of the command line.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Long name, without the leading dashes.
    pub name: &'static str,
    /// Optional one-letter short name.
    pub short: Option<char>,
    pub kind: Kind,
    /// Default value as the user would write it ("" when there is none).
    pub default: &'static str,
    /// Whether `GITSYNC_<NAME>` / `GIT_SYNC_<NAME>` may set it.
    pub env: bool,
    /// Further deprecated environment variables that set it, lowest
    /// precedence last (v3 names such as `GIT_SYNC_DEST`, `GIT_KNOWN_HOSTS`).
    pub extra_env: &'static [&'static str],
    /// Variables of other tools, read only when none of git-sync's own is
    /// set (`AZURE_CLIENT_ID`, set by Azure's workload identity webhook).
    pub fallback_env: &'static [&'static str],
    /// Deprecated v3 flags: accepted, not shown in `--help`.
    pub deprecated: Option<&'static str>,
    /// Value placeholder shown in help.
    pub value_name: &'static str,
    pub doc: &'static str,
}

const fn flag(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    value_name: &'static str,
    doc: &'static str,
) -> Flag {
    Flag {
        name,
        short: None,
        kind,
        default,
        env: true,
        extra_env: &[],
        fallback_env: &[],
        deprecated: None,
        value_name,
        doc,
    }
}

/// A deprecated v3 flag, set only by its own env names.
const fn legacy(
    name: &'static str,
    kind: Kind,
    env: &'static [&'static str],
    instead: &'static str,
) -> Flag {
    Flag {
        name,
        short: None,
        kind,
        default: "",
        env: false,
        extra_env: env,
        fallback_env: &[],
        deprecated: Some(instead),
        value_name: "VALUE",
        doc: instead,
    }
}

use Kind::*;

/// All flags, in the order `--help` shows them.
pub const FLAGS: &[Flag] = &[
    flag(
        "repo",
        Text,
        "",
        "URL",
        "The git repository to sync. Required.",
    ),
    flag(
        "ref",
        Text,
        "HEAD",
        "REF",
        "The git revision to sync: a branch name, a tag (annotated tags are peeled to their \
         commit), a full commit hash, HEAD (the remote's default branch), or another ref by \
         its full name or its end (pull/123/head).",
    ),
    flag(
        "root",
        Text,
        "",
        "DIR",
        "The root directory for git-sync operations, under which --link will be created. \
         Required. It is created if missing; if it holds something that is not ours, it is \
         emptied (but for a lost+found), unless it is clearly not a sync directory: /, a \
         parent of the home directory, of the working directory, of git-sync itself or of a \
         local --repo, one holding another mount, a git working tree or a directory in one \
         holding files it tracks; then git-sync exits 1.",
    ),
    flag(
        "link",
        Text,
        "",
        "PATH",
        "The path (absolute, or relative to --root) of the symlink that points at the \
         current checkout. Defaults to the last path element of --repo, as is (site.git \
         for .../site.git, as upstream; for a local path such as '.', the name of its \
         directory, and for a working tree's .git, the tree's). Its name must not \
         start with '.'.",
    ),
    flag(
        "period",
        Duration,
        "10s",
        "DURATION",
        "How long to wait between sync attempts. Must be at least 10ms.",
    ),
    flag(
        "period-jitter",
        Duration,
        "0s",
        "DURATION",
        "Add a random delay of up to this much to each wait, so that many replicas do not \
         poll the git server in lockstep.",
    ),
    flag(
        "init-period",
        Duration,
        "",
        "DURATION",
        "How long to wait between attempts until the first successful sync. Defaults to \
         --period.",
    ),
    flag(
        "sync-timeout",
        Duration,
        "120s",
        "DURATION",
        "The total time allowed for one complete sync, including network transfers. Must be \
         at least 10ms.",
    ),
    flag(
        "one-time",
        Bool,
        "false",
        "",
        "Exit after the first successful sync (status 0), or after the allowed failures \
         (status 1).",
    ),
    flag(
        "max-failures",
        Int,
        "0",
        "INT",
        "The number of consecutive failures allowed before aborting (exit 1). Negative: \
         retry forever.",
    ),
    flag(
        "init-max-failures",
        Int,
        "",
        "INT",
        "Like --max-failures, but applies only until the first successful sync. Defaults \
         to --max-failures.",
    ),
    flag(
        "depth",
        Int,
        "1",
        "INT",
        "Create a shallow clone with history truncated to this many commits. 0 means the \
         full history.",
    ),
    flag(
        "touch-file",
        Text,
        "",
        "PATH",
        "A file (absolute, or relative to --root) to touch whenever the link changes, \
         and at the first sync after a start.",
    ),
    flag(
        "error-file",
        Text,
        "",
        "PATH",
        "A file (absolute, or relative to --root) into which the last sync error is written \
         as JSON; removed after the next success.",
    ),
    flag(
        "stale-worktree-timeout",
        Duration,
        "0s",
        "DURATION",
        "How long to keep a worktree after it stopped being current. Worktrees are never \
         removed before --stale-worktree-grace has passed.",
    ),
    flag(
        "stale-worktree-grace",
        Duration,
        "5s",
        "DURATION",
        "The least time the previous worktree is kept after a swap, so that readers that \
         resolved the link just before it can finish (not in upstream git-sync).",
    ),
    flag(
        "git-gc",
        Text,
        "always",
        "auto|always|aggressive|off",
        "When to drop unreachable git objects: auto (once more than 16 packs or 256 loose \
         objects have built up), always (after an update, once unreachable objects take a \
         quarter of the store or more than 8 packs have built up), aggressive (after every \
         update), off.",
    ),
    flag(
        "git-config",
        Text,
        "",
        "KEY:VAL,...",
        "Git config to set before syncing, as comma-separated key:value pairs (values may \
         be double-quoted). Keys libgit2 does not use (e.g. safe.directory) are accepted \
         and recorded.",
    ),
    flag(
        "git-config-add",
        List,
        "",
        "KEY:VAL",
        "Adds a value to a git config key (--git-config replaces them), one pair per \
         use; may be repeated. Git's GIT_CONFIG_COUNT variables are read as well.",
    ),
    flag(
        "exechook-command",
        Text,
        "",
        "PATH",
        "A command (no arguments, no shell) run after each new commit is published, in \
         its worktree, with GITSYNC_HASH set. Asynchronous: retried every \
         --exechook-backoff until it succeeds; a newer hash replaces a pending one. \
         For a git binary in it, as upstream: GIT_SSH_COMMAND with the SSH keys and \
         host checks of git-sync, safe.directory=*, and the HTTP credentials, from \
         git-sync through a credential helper.",
    ),
    flag(
        "exechook-timeout",
        Duration,
        "30s",
        "DURATION",
        "Time limit for one run of --exechook-command.",
    ),
    flag(
        "exechook-backoff",
        Duration,
        "3s",
        "DURATION",
        "Time between retries of a failed --exechook-command.",
    ),
    flag(
        "pre-publish-exechook-command",
        Text,
        "",
        "PATH",
        "A command run in the new worktree before it is published, with GITSYNC_HASH set \
         to the hash published until then. As upstream, its failure is logged and does \
         not stop the publish (in --one-time mode it makes the exit status 1).",
    ),
    flag(
        "pre-publish-exechook-timeout",
        Duration,
        "30s",
        "DURATION",
        "Time limit for one run of --pre-publish-exechook-command.",
    ),
    flag(
        "pre-publish-exechook-backoff",
        Duration,
        "3s",
        "DURATION",
        "Accepted for upstream compatibility: the pre-publish hook runs once per publish.",
    ),
    flag(
        "webhook-url",
        Text,
        "",
        "URL",
        "A URL called after each new commit is published, with header Gitsync-Hash. \
         Asynchronous, retried every --webhook-backoff until it succeeds; a newer hash \
         replaces a pending one.",
    ),
    flag(
        "webhook-method",
        Text,
        "POST",
        "METHOD",
        "The HTTP method of the webhook.",
    ),
    flag(
        "webhook-success-status",
        Int,
        "200",
        "INT",
        "The HTTP status that means success; 0 (or -1): any answer is a success (fire \
         and forget), a receiver that cannot be reached is still a failure.",
    ),
    flag(
        "webhook-timeout",
        Duration,
        "1s",
        "DURATION",
        "Time limit for one webhook call.",
    ),
    flag(
        "webhook-backoff",
        Duration,
        "3s",
        "DURATION",
        "Time between retries of a failed webhook.",
    ),
    flag(
        "http-bind",
        Text,
        "",
        "ADDR:PORT",
        "Serve HTTP here: / answers 503 until the first successful sync and 200 after \
         (for Kubernetes probes).",
    ),
    flag(
        "http-metrics",
        Bool,
        "false",
        "",
        "Serve Prometheus metrics at /metrics (needs --http-bind).",
    ),
    flag(
        "http-pprof",
        Bool,
        "false",
        "",
        "Accepted for upstream compatibility: /debug/pprof/ answers 200 with a pointer to \
         Linux profilers (Go's pprof does not exist in a Rust program).",
    ),
    flag(
        "sync-on-signal",
        Text,
        "",
        "SIGNAL",
        "A signal (name like SIGHUP or HUP, or number) that triggers a sync at once.",
    ),
    flag(
        "sync-trigger-secret-file",
        Text,
        "",
        "PATH",
        "Enable POST /sync on --http-bind: a request that proves this secret starts a sync \
         at once. Accepted proofs: the HMAC-SHA256 of the body in GitHub's \
         X-Hub-Signature-256, Bitbucket's X-Hub-Signature, Gitea's X-Gitea-Signature or \
         Forgejo's X-Forgejo-Signature; GitLab's X-Gitlab-Token; or Authorization: Bearer \
         <secret>. Others get 401. (Not in upstream git-sync.)",
    ),
    flag(
        "watch-local",
        Bool,
        "true",
        "",
        "For a local repository (file:// or a path), watch its refs and sync within \
         milliseconds of a change, and the directory holding it, so that a repository \
         put in its place (or a symlink pointed elsewhere) is synced at once; polling \
         stays as the safety net. (Not in upstream.)",
    ),
    flag(
        "username",
        Text,
        "",
        "NAME",
        "The username for HTTP(S) authentication. Needs a password: GITSYNC_PASSWORD \
         or --password-file.",
    ),
    flag(
        "password",
        Text,
        "",
        "SECRET",
        "The password or access token for HTTP(S) authentication. Prefer the environment \
         variable GITSYNC_PASSWORD or --password-file: a flag is visible to every user of \
         the machine in the process list.",
    ),
    flag(
        "password-file",
        Text,
        "",
        "PATH",
        "A file holding the password or access token; read again before every sync, so a \
         rotated token is picked up without a restart.",
    ),
    Flag {
        extra_env: &["GIT_ASKPASS_URL"],
        ..flag(
            "askpass-url",
            Text,
            "",
            "URL",
            "A URL queried before every sync for credentials: the answer holds username=<u> \
             and password=<p> lines. Counted in git_sync_askpass_calls.",
        )
    },
    flag(
        "credential",
        List,
        "",
        "JSON",
        "Credentials for URLs starting with a prefix, as a JSON object {\"url\": ..., \
         \"username\": ..., \"password\": ... or \"password-file\": ...} or a list of \
         them; may be repeated. The longest matching prefix wins (submodules too).",
    ),
    flag(
        "github-app-private-key-file",
        Text,
        "",
        "PATH",
        "GitHub App auth: the app's private key (PEM).",
    ),
    flag(
        "github-app-private-key",
        Text,
        "",
        "PEM",
        "GitHub App auth: the private key itself (prefer GITSYNC_GITHUB_APP_PRIVATE_KEY).",
    ),
    flag(
        "github-app-application-id",
        Int,
        "",
        "INT",
        "GitHub App auth: the app's ID (JWT issuer).",
    ),
    flag(
        "github-app-client-id",
        Text,
        "",
        "ID",
        "GitHub App auth: the app's client ID (JWT issuer, instead of the app ID).",
    ),
    flag(
        "github-app-installation-id",
        Int,
        "",
        "INT",
        "GitHub App auth: the installation to get tokens for.",
    ),
    flag(
        "github-base-url",
        Text,
        "https://api.github.com/",
        "URL",
        "GitHub App auth: the API base URL (GitHub Enterprise: https://HOST/api/v3/).",
    ),
    flag(
        "azure-workload-identity",
        Bool,
        "false",
        "",
        "Azure DevOps auth without a secret: exchange the Pod's federated ServiceAccount \
         token for a Microsoft Entra access token (renewed before it expires).",
    ),
    Flag {
        fallback_env: &["AZURE_CLIENT_ID"],
        ..flag(
            "azure-client-id",
            Text,
            "",
            "ID",
            "Azure workload identity: the Entra client ID (set by the webhook as \
             AZURE_CLIENT_ID).",
        )
    },
    Flag {
        fallback_env: &["AZURE_TENANT_ID"],
        ..flag(
            "azure-tenant-id",
            Text,
            "",
            "ID",
            "Azure workload identity: the Entra tenant ID (AZURE_TENANT_ID).",
        )
    },
    Flag {
        fallback_env: &["AZURE_FEDERATED_TOKEN_FILE"],
        ..flag(
            "azure-federated-token-file",
            Text,
            "",
            "PATH",
            "Azure workload identity: the projected federated token, read again for every \
             exchange (AZURE_FEDERATED_TOKEN_FILE).",
        )
    },
    Flag {
        fallback_env: &["AZURE_AUTHORITY_HOST"],
        ..flag(
            "azure-authority-host",
            Text,
            "https://login.microsoftonline.com/",
            "URL",
            "Azure workload identity: the Entra authority host (AZURE_AUTHORITY_HOST; for \
             sovereign clouds).",
        )
    },
    flag(
        "azure-scope",
        Text,
        "499b84ac-1321-427f-aa17-267ca6975798/.default",
        "SCOPE",
        "Azure workload identity: the OAuth2 scope (default: Azure DevOps).",
    ),
    Flag {
        extra_env: &["GIT_SSH_KEY_FILE"],
        ..flag(
            "ssh-key-file",
            List,
            "/etc/git-secret/ssh",
            "PATH",
            "SSH private key(s) to try, in order; may be repeated (env: colon-separated). Then the keys of the ssh-agent at SSH_AUTH_SOCK, if set.",
        )
    },
    Flag {
        extra_env: &["GIT_SYNC_KNOWN_HOSTS", "GIT_KNOWN_HOSTS"],
        ..flag(
            "ssh-known-hosts",
            Bool,
            "true",
            "",
            "Verify the SSH server's host key against --ssh-known-hosts-file.",
        )
    },
    Flag {
        extra_env: &["GIT_SSH_KNOWN_HOSTS_FILE"],
        ..flag(
            "ssh-known-hosts-file",
            Text,
            "/etc/git-secret/known_hosts",
            "PATH",
            "The known_hosts file (OpenSSH format; hashed host names are understood). /etc/ssh/ssh_known_hosts is read too, as by OpenSSH.",
        )
    },
    Flag {
        extra_env: &["GIT_COOKIE_FILE"],
        ..flag(
            "cookie-file",
            Bool,
            "false",
            "",
            "Send the cookies of /etc/git-secret/cookie_file (Netscape format) with the HTTP \
             requests they match; re-read before every pass. `--git-config \
             http.cookieFile:PATH` names another file.",
        )
    },
    flag(
        "submodules",
        Text,
        "recursive",
        "recursive|shallow|off",
        "Submodules: all levels, only the first level, or none. They are fetched at the \
         recorded commit with the same credentials.",
    ),
    flag(
        "sparse-checkout-file",
        Text,
        "",
        "PATH",
        "Check out only the paths its patterns select (git's sparse-checkout syntax; cone \
         files work too).",
    ),
    flag(
        "group-write",
        Bool,
        "false",
        "",
        "Make files, directories and the link group-writable.",
    ),
    flag(
        "add-user",
        Bool,
        "false",
        "",
        "Append an /etc/passwd entry for the running UID if it has none and the file is \
         writable (some SSH setups need a user name).",
    ),
    flag(
        "filter",
        Text,
        "",
        "SPEC",
        "Partial clone filter: blob:none or blob:limit=<n>[kmg]. With --sparse-checkout-file, \
         only the contents the patterns select are fetched (from local paths, and from \
         servers that allow filters, over protocol v2); otherwise whole objects are.",
    ),
    flag(
        "git",
        Text,
        "git",
        "PATH",
        "Accepted for compatibility and ignored: git-sync does all git work in process \
         (libgit2) and needs no git binary.",
    ),
    Flag {
        short: Some('v'),
        ..flag(
            "verbose",
            Int,
            "0",
            "INT",
            "Log verbosity: 0 logs one line per update and errors, 1 and more add debug \
             detail (every poll, every step's timing); higher values log the same.",
        )
    },
    flag(
        "log-format",
        Text,
        "",
        "json|text",
        "Log line format. Default: json when stderr is not a terminal, text otherwise.",
    ),
    flag(
        "state-dir",
        Text,
        "",
        "DIR",
        "Dest mode only (--dest without --root): where the git state is kept, never \
         inside the served directory. Default: <system temp dir>/git-sync/<dest path>.",
    ),
    Flag {
        env: false,
        ..flag("man", Bool, "false", "", "Print the full manual and exit.")
    },
    // Deprecated v3 names, mapped as upstream v4 maps them.
    legacy("branch", Text, &["GIT_SYNC_BRANCH"], "use --ref instead"),
    legacy("rev", Text, &["GIT_SYNC_REV"], "use --ref instead"),
    legacy(
        "dest",
        Text,
        &["GIT_SYNC_DEST"],
        "use --link instead (without --root: the directory to serve, see dest mode)",
    ),
    legacy(
        "wait",
        Text,
        &["GIT_SYNC_WAIT"],
        "use --period instead (seconds, may be fractional)",
    ),
    legacy(
        "timeout",
        Int,
        &["GIT_SYNC_TIMEOUT"],
        "use --sync-timeout instead (seconds)",
    ),
    legacy(
        "max-sync-failures",
        Int,
        &["GIT_SYNC_MAX_SYNC_FAILURES"],
        "use --max-failures instead",
    ),
    legacy("v", Int, &[], "use -v or --verbose instead"),
    legacy(
        "ssh",
        Bool,
        &["GITSYNC_SSH", "GIT_SYNC_SSH"],
        "not needed: SSH is used for ssh:// and user@host:path URLs",
    ),
    legacy(
        "sync-hook-command",
        Text,
        &["GIT_SYNC_HOOK_COMMAND"],
        "use --exechook-command instead",
    ),
    legacy(
        "change-permissions",
        Int,
        &["GIT_SYNC_PERMISSIONS"],
        "no longer supported; use --group-write",
    ),
    Flag {
        env: false,
        ..flag("version", Bool, "false", "", "Print the version and exit.")
    },
    Flag {
        short: Some('h'),
        env: false,
        ..flag("help", Bool, "false", "", "Print help and exit.")
    },
];

/// Look up a flag definition by its long name.
pub fn find(name: &str) -> Option<&'static Flag> {
    FLAGS.iter().find(|f| f.name == name)
}

/// `GITSYNC_SYNC_TIMEOUT` for `sync-timeout`.
pub fn env_name(prefix: &str, flag_name: &str) -> String {
    format!("{prefix}{}", flag_name.to_uppercase().replace('-', "_"))
}
