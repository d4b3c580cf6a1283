from tests.helpers import text


def test_login_and_dashboard(login):
    c = login("thuvien")
    resp = c.get("/")
    assert resp.status_code == 200
    assert "Trường THCS Nguyễn Du" in text(resp)
