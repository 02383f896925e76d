"""``python -m submission.data {generate,info,show,verify}``; see submission.data.tools."""

from submission.data.tools import main

if __name__ == "__main__":
  main()
