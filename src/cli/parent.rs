//! The `--parent` flag: send everything through another proxy (stages 2–5).
//!
//! A group of its own rather than part of stage 2's server flags, because
//! it is about where requests go, not how the server is sized; stage 2
//! uses it for plain requests and stage 4 for CONNECT as well.

use crate::parent::{self, Parents};
use crate::uri::Authority;

#[derive(clap::Args, Clone, Debug)]
pub struct ParentArgs {
    /// send requests through the parent proxy at URL (http://HOST:PORT);
    /// give it again for more parents, tried in order when one is down
    #[arg(long = "parent", value_name = "URL", value_parser = parent::parse)]
    pub parents: Vec<Authority>,
}

impl ParentArgs {
    /// The parents, in the order given; none when the flag was not given.
    pub fn parents(&self) -> Parents {
        let parents = Parents::new(self.parents.iter().cloned());
        if !parents.is_empty() {
            log::info!("sending requests through parent proxies, in this order: {parents}");
        }
        parents
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        parent: ParentArgs,
    }

    fn parse(args: &[&str]) -> Result<Parents, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map(|c| c.parent.parents())
    }

    #[test]
    fn parents_keep_their_order() {
        assert!(parse(&[]).unwrap().is_empty());
        let parents = parse(&["--parent", "http://b.test:3128", "--parent", "a.test:8080"]);
        assert_eq!(
            parents.unwrap().to_string(),
            "http://b.test:3128, http://a.test:8080"
        );
    }

    #[test]
    fn a_bad_parent_is_refused_with_the_reason() {
        let error = parse(&["--parent", "https://p.test:3128"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        let text = error.to_string();
        assert!(
            text.contains("--parent") && text.contains("plain http"),
            "{text}"
        );
    }
}
