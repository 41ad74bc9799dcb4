//! The Chat Completions client against atp-model-fake (no engine needed): JSON and streamed
//! answers with `n` choices, retries of 429 and 5xx and of cut connections, credentials
//! refused at once, answers stopped at the output limit.

use std::time::Duration;

use atp_model_fake::{policy, ModelFake, Script, Turn, Usage};
use atp_prover::retry::Backoff;
use atp_sample::chat::{ApiKey, ChatClient, ChatError, ClientOptions, Message, Sampling};
use atp_sample::extract::{extract_lean, NoCode};
use tokio::time::Instant;

fn opts(stream: bool) -> ClientOptions {
    ClientOptions {
        backoff: Backoff {
            first: Duration::from_millis(200),
            cap: Duration::from_millis(300),
            max_attempts: 4,
        },
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        stream,
    }
}

fn sampling() -> Sampling {
    Sampling {
        model: "deepseek-prover".into(),
        temperature: Some(1.0),
        top_p: None,
        max_tokens: Some(2048),
    }
}

fn client(fake: &ModelFake, stream: bool) -> ChatClient {
    ChatClient::new(
        &format!("{}/v1", fake.url()),
        Some(ApiKey::new("sk-test")),
        opts(stream),
    )
    .expect("client")
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

#[tokio::test]
async fn n_choices_arrive_in_order_streamed_or_not_with_usage() {
    for stream in [false, true] {
        let fake = ModelFake::start(
            Script::new(vec![
                Turn::sample(["a", "b", "c"]).with_usage(Usage::new(300, 40))
            ])
            .repeating_last(),
        )
        .await
        .expect("fake");
        let c = client(&fake, stream)
            .complete(
                &sampling(),
                &[Message::user("prove it")],
                3,
                Some(7),
                soon(),
            )
            .await
            .expect("answer");
        let texts: Vec<&str> = c.choices.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(texts, vec!["a", "b", "c"], "stream={stream}");
        assert!(c
            .choices
            .iter()
            .all(|x| x.finish_reason.as_deref() == Some("stop")));
        assert!(c.usage_reported, "stream={stream}: include_usage asked for");
        assert_eq!(
            (c.usage.input_tokens, c.usage.output_tokens),
            (300, 120),
            "completion tokens are per choice"
        );
        assert_eq!(c.attempts, 1);
        let r = &fake.requests()[0];
        assert_eq!(r.n, 3);
        assert_eq!(r.stream, stream);
        assert_eq!(r.body["seed"], 7);
        assert_eq!(r.body["max_tokens"], 2048);
        assert_eq!(r.body["model"], "deepseek-prover");
        assert!(r.path.ends_with("/v1/chat/completions"), "{}", r.path);
        assert_eq!(
            r.auth,
            vec![atp_model_fake::AuthHeader::AuthorizationBearer]
        );
    }
}

/// Serve `first` until one request was seen, then `then`.
async fn switch_after_first(fake: &ModelFake, then: Script) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.requests().is_empty() {
        assert!(Instant::now() < deadline, "no request arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fake.set_script(then);
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_backoff() {
    for first in [Turn::rate_limited(1), Turn::error(500), Turn::error(503)] {
        let fake = ModelFake::start(Script::new(vec![first.clone()]).repeating_last())
            .await
            .expect("fake");
        let c = client(&fake, false);
        let started = Instant::now();
        let (params, prompt) = (sampling(), [Message::user("p")]);
        let (answer, ()) = tokio::join!(
            c.complete(&params, &prompt, 1, None, soon()),
            switch_after_first(&fake, policy::sample(["done"]))
        );
        let answer = answer.expect("retried");
        assert_eq!(answer.choices[0].text, "done");
        assert_eq!(answer.attempts, 2, "{first:?}");
        if first == Turn::rate_limited(1) {
            assert!(
                started.elapsed() >= Duration::from_secs(1),
                "retry-after is honoured"
            );
        }
        assert_eq!(fake.requests().len(), 2);
    }
}

#[tokio::test]
async fn a_connection_cut_mid_answer_is_retried_streamed_or_not() {
    for stream in [false, true] {
        let fake = ModelFake::start(Script::new(vec![Turn::cut()]).repeating_last())
            .await
            .expect("fake");
        let c = client(&fake, stream);
        let (params, prompt) = (sampling(), [Message::user("p")]);
        let (answer, ()) = tokio::join!(
            c.complete(&params, &prompt, 1, None, soon()),
            switch_after_first(&fake, policy::sample(["whole"]))
        );
        assert_eq!(
            answer.expect("retried").choices[0].text,
            "whole",
            "stream={stream}"
        );
    }
}

#[tokio::test]
async fn rejected_credentials_and_bad_requests_fail_at_once() {
    let fake = ModelFake::start(policy::reject_auth()).await.expect("fake");
    let e = client(&fake, false)
        .complete(&sampling(), &[Message::user("p")], 1, None, soon())
        .await
        .expect_err("401");
    assert!(
        matches!(e, ChatError::Unauthorized { status: 401, .. }),
        "{e:?}"
    );
    assert!(e.is_fatal());
    assert!(!e.to_string().contains("sk-test"));
    assert_eq!(fake.requests().len(), 1, "no retry of a 401");
    let fake = ModelFake::start(Script::new(vec![Turn::error(404)]).repeating_last())
        .await
        .expect("fake");
    let e = client(&fake, false)
        .complete(&sampling(), &[Message::user("p")], 1, None, soon())
        .await
        .expect_err("404");
    assert_eq!(e.to_string(), "the model API refused the request (HTTP 404: The model does not exist or you do not have access to it.)");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let fake = ModelFake::start(Script::new(vec![Turn::rate_limited(60)]).repeating_last())
        .await
        .expect("fake");
    let started = Instant::now();
    let e = client(&fake, false)
        .complete(
            &sampling(),
            &[Message::user("p")],
            1,
            None,
            Instant::now() + Duration::from_secs(2),
        )
        .await
        .expect_err("deadline");
    assert!(matches!(e, ChatError::Deadline { .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a 60 s retry-after past the deadline is not waited for"
    );
}

#[tokio::test]
async fn an_answer_stopped_at_the_output_limit_has_no_code() {
    for stream in [false, true] {
        let fake = ModelFake::start(Script::new(vec![Turn::truncated()]).repeating_last())
            .await
            .expect("fake");
        let c = client(&fake, stream)
            .complete(&sampling(), &[Message::user("p")], 2, None, soon())
            .await
            .expect("answer");
        assert_eq!(c.choices.len(), 2);
        for ch in &c.choices {
            assert_eq!(ch.finish_reason.as_deref(), Some("length"));
            assert_eq!(extract_lean(&ch.text), Err(NoCode::NoBlock));
        }
    }
}
