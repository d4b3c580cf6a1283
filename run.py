"""Start the web server: `python run.py` (http://127.0.0.1:$PORT).

On an empty database it first upgrades the schema and loads the demo city, then prints
the URL and the demo logins. Production: see README (gunicorn).
"""
import os
import sys

from app import create_app

app = create_app()


def main():
    from app.core.setup import prepare_database
    from app.org.demo import DEMO_LOGINS, DEMO_PASSWORD

    with app.app_context():
        loaded = prepare_database(load_demo=app.config["DEMO_DATA_ON_EMPTY_DB"])
    port = int(os.environ.get("PORT", app.config["PORT"]))
    url = f"http://127.0.0.1:{port}"
    print(f"\nThư viện trường học đang chạy tại {url}", flush=True)
    if app.config["DEMO_DATA_ON_EMPTY_DB"]:
        if loaded:
            print("Đã nạp dữ liệu thành phố mẫu.")
        print(f"Tài khoản mẫu (mật khẩu {DEMO_PASSWORD}):")
        for login, what in DEMO_LOGINS:
            print(f"  {login:<12} {what}")
    sys.stdout.flush()
    app.run(host="127.0.0.1", port=port, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
