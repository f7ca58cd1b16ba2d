//! `/health` and `/health/ready` on both services.

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer_200_on_both_services() {
    let sys = System::embedded().await;
    let raw = RawClient::new();
    for base in [&sys.traveler, &sys.owner] {
        let live = raw
            .send(Method::GET, &format!("{base}/health"), &[], None)
            .await;
        assert_eq!(live.status, 200, "{}", live.text);
        assert!(
            live.content_type.starts_with("application/json"),
            "{}",
            live.content_type
        );
        assert_eq!(live.body["status"], "ok");

        let ready = raw
            .send(Method::GET, &format!("{base}/health/ready"), &[], None)
            .await;
        assert_eq!(ready.status, 200, "{}", ready.text);
        assert!(
            ready.content_type.starts_with("application/json"),
            "{}",
            ready.content_type
        );
        assert_eq!(ready.body["status"], "ready");

        raw.send(Method::POST, &format!("{base}/health"), &[], None)
            .await
            .problem(405, "method_not_allowed");
    }
}
