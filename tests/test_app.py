from __future__ import annotations


def test_sign_in_page_is_japanese_by_default(client):
    resp = client.get("/signin")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert '<html lang="ja">' in html
    assert "サインイン" in html or "ログイン" in html


def test_security_headers_on_every_page(client):
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_unknown_page_is_a_clear_404_in_japanese(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404
    assert "見つかりません" in resp.get_data(as_text=True)
