from grpo_fast.cli import main

main()
